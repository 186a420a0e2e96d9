// Entry points of tally-bench's subcommands: argv[0] is the subcommand name; returns the exit code.
#pragma once

namespace tally::bench {

int offload_main(int argc, char** argv);
int calibrate_main(int argc, char** argv);
int plot_main(int argc, char** argv);

}  // namespace tally::bench
