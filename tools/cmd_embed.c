#include "cli.h"
int cmd_embed(int argc, char **argv) { return 2; }
