#include "cli.h"
int cmd_explain(int argc, char **argv) { return 2; }
