#include "cli.h"
#include <stdio.h>
int xs_cli_devbroker(int argc, char **argv)
{
    fprintf(stderr, "not implemented\n");
    return 1;
}
