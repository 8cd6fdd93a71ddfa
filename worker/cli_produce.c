#include "cli.h"
#include <stdio.h>
int xs_cli_produce(int argc, char **argv)
{
    fprintf(stderr, "not implemented\n");
    return 1;
}
