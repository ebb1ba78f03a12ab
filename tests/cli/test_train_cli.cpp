// moelab train as a user meets it: --help names the Megatron-Core options, a
// tiny run writes the DESIGN.md schema (train/, eval/, load/) and moelab show
// prints its final loss and MaxVio; bad input is one line and exit status 2.
#include <gtest/gtest.h>
#include <unistd.h>

#include "cli/run_command.hpp"
#include "io/hdf5.hpp"

namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("moelab_train_" + std::to_string(getpid()) + "_" + name)).string();
}

const std::string kTiny = std::string(" --set model.preset=v3-tiny --set data.corpus=") + MOELAB_TEST_FIXTURES +
                          "/corpus_sample.h5 --set data.heldout_every=10 --set data.seq_len=16 --set data.batch_size=2"
                          " --set train.eval_batches=2 --set train.warmup_steps=2 --set train.decay_start=4"
                          " --set train.decay_steps=4 --set train.log_every=0";

}  // namespace

TEST(TrainCli, HelpNamesMegatronCoreOptions) {
  CommandResult r = run_command("train --help");
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* name : {"moe_router_enable_expert_bias", "moe_router_bias_update_rate",
                           "moe_router_load_balancing_type", "moe_aux_loss_coeff", "moe_router_num_groups",
                           "moe_router_group_topk"})
    EXPECT_NE(r.out.find(name), std::string::npos) << name;
}

TEST(TrainCli, SweepWritesTheSchemaAndShowPrintsFinalFigures) {
  const std::string out = temp_path("sweep.h5");
  CommandResult r = run_command("train" + kTiny + " --set train.steps=6 --set train.eval_every=3 --set output.out=" +
                                out + " --set output.force=true --sweep balance.method:aux_free,aux_loss");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("MaxVio_global"), std::string::npos) << r.out;
  moelab::h5::File f = moelab::h5::File::open_read(out);
  for (const char* run : {"runs/balance.method=aux_free", "runs/balance.method=aux_loss"}) {
    moelab::h5::Group g = f.open_group(run);
    EXPECT_EQ(g.attr_string("status"), "complete");
    for (const char* name : {"step", "loss", "mtp_loss", "aux_loss", "lr", "grad_norm", "step_time_s", "tokens_per_s"})
      EXPECT_EQ(g.dataset_shape(std::string("train/") + name), moelab::Shape({6})) << name;
    EXPECT_EQ(g.dataset_shape("eval/loss"), moelab::Shape({2}));
    // v3-tiny: one MoE layer plus the MTP module's, 8 experts; 3 domains.
    EXPECT_EQ(g.dataset_shape("load/expert_tokens"), moelab::Shape({6, 2, 8}));
    EXPECT_EQ(g.dataset_shape("load/expert_bias"), moelab::Shape({6, 2, 8}));
    EXPECT_EQ(g.dataset_shape("load/maxvio"), moelab::Shape({6, 2}));
    EXPECT_EQ(g.dataset_shape("eval/maxvio_global"), moelab::Shape({2, 2}));
    EXPECT_EQ(g.dataset_shape("eval/expert_tokens_by_domain"), moelab::Shape({2, 2, 3, 8}));
    // Every token goes to top-k = 2 experts: each step's loads sum to 2 * tokens.
    auto tokens = g.read<double>("load/expert_tokens");
    double sum = 0;
    for (int e = 0; e < 8; ++e) sum += tokens[e];
    EXPECT_EQ(sum, 2 * 2 * 16);
  }
  // aux-loss-free moves the bias (sign rule), the aux-loss baseline keeps it at zero.
  auto bias_free = f.open_group("runs/balance.method=aux_free").read<double>("load/expert_bias");
  auto bias_aux = f.open_group("runs/balance.method=aux_loss").read<double>("load/expert_bias");
  double moved = 0, still = 0;
  for (int64_t i = 16 * 5; i < 16 * 6; ++i) moved += std::abs(bias_free[i]), still += std::abs(bias_aux[i]);
  EXPECT_GT(moved, 0.0);
  EXPECT_EQ(still, 0.0);

  CommandResult show = run_command("show " + out);
  ASSERT_EQ(show.status, 0) << show.err;
  EXPECT_NE(show.out.find("final: train loss"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("MaxVio_global"), std::string::npos) << show.out;
  std::filesystem::remove(out);
}

TEST(TrainCli, BadInputIsOneLineAndStatus2) {
  CommandResult r = run_command("train --set balance.aux_loss=sinkhorn --set output.out=" + temp_path("bad.h5"));
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("balance.aux_loss"), std::string::npos) << r.err;
  r = run_command("train --set train.no_such_key=1");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("train.no_such_key"), std::string::npos) << r.err;
  r = run_command("train" + kTiny + " --set data.corpus=/nonexistent/corpus.h5 --set output.out=" + temp_path("nc.h5") +
                  " --set output.force=true");
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("/nonexistent/corpus.h5"), std::string::npos) << r.err;
}
