/*
 * The operators' CLI: one function per subcommand, dispatched by
 * xsell_main.c. Each receives argv starting at the subcommand name and
 * returns the process exit code (0 ok, 1 runtime failure, 2 usage error).
 */
#ifndef XSELL_CLI_H
#define XSELL_CLI_H

int xs_cli_devbroker(int argc, char **argv);
int xs_cli_produce(int argc, char **argv);
int xs_cli_tail(int argc, char **argv);
int xs_cli_schemas(int argc, char **argv);
int xs_cli_config(int argc, char **argv);
int xs_cli_eval(int argc, char **argv);
int xs_cli_inspect(int argc, char **argv);
int xs_cli_bench(int argc, char **argv);
int xs_cli_order_bench(int argc, char **argv); /* xsell bench order (cli_order.c) */
int xs_cli_topics(int argc, char **argv);

#endif
