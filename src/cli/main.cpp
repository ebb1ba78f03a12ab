// moelab: the command. Dispatches to a subcommand, initialises MPI, and is
// the only place that catches errors (STYLE.md habit 8): one line
// "error: ..." and exit status 2, or MPI_Abort when other ranks are running,
// so a failure on any rank ends the whole job instead of hanging it.
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/omp_env.hpp"
#include "core/version.hpp"

namespace {

// Swallows everything: the output stream of non-root ranks.
class NullBuffer : public std::streambuf {
 protected:
  int overflow(int c) override { return c; }
};

void print_usage(std::ostream& out) {
  out << "usage: moelab <subcommand> [options]   (moelab <subcommand> --help for its options)\n\n"
      << "subcommands:\n";
  for (const auto& c : moelab::commands()) {
    std::string name = c.name;
    name.resize(std::max<size_t>(name.size() + 2, 14), ' ');
    out << "  " << name << c.summary << "\n";
  }
  out << "\noptions:\n  --help      this list\n  --version   version and git commit\n";
}

std::string join_command_line(int argc, char** argv) {
  std::string line = "moelab";
  for (int i = 1; i < argc; ++i) line += std::string(" ") + argv[i];
  return line;
}

// The whole job ends: rank-local errors cannot be reported by rank 0, so the
// failing rank prints (prefixed with its rank) and aborts everyone.
// NOTE: an error every rank hits (a bad option) should print once: rank 0
// reports at once and its MPI_Abort ends the others before their delayed
// report; an error on one rank alone still gets printed by that rank.
[[noreturn]] void fail_job(const std::string& message, int rank, int world_size) {
  if (world_size > 1) {
    if (rank != 0) usleep(300 * 1000);
    std::fprintf(stderr, "error: rank %d: %s\n", rank, message.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  std::fprintf(stderr, "error: %s\n", message.c_str());
  std::fflush(stderr);
  MPI_Finalize();
  std::exit(2);
}

// `moelab train --device cuda` under mpirun keeps NCCL receives posted (the
// pipeline transport's, one op ahead) while it launches other kernels. With
// CUDA's lazy module loading (the default) a kernel's first launch may
// synchronise the context and so wait for such a receive, whose sender may
// be waiting for this rank: a hang (CUDA programming guide, Lazy Loading,
// "concurrent execution"). Such runs load modules eagerly unless the user set
// CUDA_MODULE_LOADING; before MPI_Init, which may initialise CUDA.
void eager_cuda_modules_for_gpu_training(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "train") != 0) return;
  for (int i = 2; i < argc; ++i)
    if (std::strcmp(argv[i], "--device=cuda") == 0 ||
        (std::strcmp(argv[i], "--device") == 0 && i + 1 < argc && std::strcmp(argv[i + 1], "cuda") == 0))
      setenv("CUDA_MODULE_LOADING", "EAGER", 0);
}

}  // namespace

int main(int argc, char** argv) {
  moelab::ensure_passive_omp_wait(argv);
  eager_cuda_modules_for_gpu_training(argc, argv);
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);  // the pipeline executor's progress thread
  moelab::CommandContext ctx;
  MPI_Comm_rank(MPI_COMM_WORLD, &ctx.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ctx.world_size);
  NullBuffer null_buffer;
  std::ostream null_stream(&null_buffer);
  ctx.out = ctx.is_root() ? &std::cout : &null_stream;
  ctx.command_line = join_command_line(argc, argv);

  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    print_usage(ctx.print());
    fail_job("no subcommand given (see the list above)", ctx.rank, ctx.world_size);
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_usage(ctx.print());
    MPI_Finalize();
    return 0;
  }
  if (args[0] == "--version" || args[0] == "version") {
    ctx.print() << "moelab " << moelab::kMoelabVersion << " (git " << moelab::kMoelabGitCommit << ", "
                << moelab::kMoelabBuildType << ", " << moelab::kMoelabCompiler << ")\n";
    MPI_Finalize();
    return 0;
  }
  const moelab::Command* command = nullptr;
  for (const auto& c : moelab::commands())
    if (args[0] == c.name) command = &c;
  if (!command) fail_job("unknown subcommand '" + args[0] + "' (see moelab --help)", ctx.rank, ctx.world_size);

  int status = 0;
  try {
    status = command->run(std::vector<std::string>(args.begin() + 1, args.end()), ctx);
  } catch (const std::exception& e) {
    fail_job(e.what(), ctx.rank, ctx.world_size);
  }
  std::cout.flush();
  MPI_Finalize();
  return status;
}
