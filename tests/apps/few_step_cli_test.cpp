// sdegen reflow, sdegen distill and consistency training end to end on tiny runs: each writes a
// run directory that sample and eval read, the reflow reports its straightness and a resumed
// reflow reuses its pairs, and bad requests are refused with the reason.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "apps/cli_support.h"

namespace sdegen::test {
namespace {

namespace fs = std::filesystem;

class FewStepCli : public CliTest {
 protected:
  // A tiny flow teacher on moons.
  std::string teacher() {
    const std::string run = path("teacher");
    const Outcome t = run_sdegen("train --data moons --model flow --steps 150 --width 16 --depth 2 --n-train 500 "
                                 "--n-val 100 --val-every 0 --out " + run);
    EXPECT_EQ(t.code, 0) << t.output;
    return run;
  }
};

TEST_F(FewStepCli, ReflowTrainsAStudentThatSamplesAndResumes) {
  const std::string t = teacher();
  const Outcome r = run_sdegen("reflow --checkpoint " + t + " --pairs 300 --solver rk4 --solver-steps 10 --steps 60 "
                               "--checkpoint-every 30 --out " + path("rf"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("2-rectified flow"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("started from the teacher's weights"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("straightness (0: straight paths): teacher"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(path("rf/pairs.pt")));
  const Outcome s = run_sdegen("sample --checkpoint " + path("rf") + " --solver euler --steps 2 --n 50 --out " +
                               path("s.csv"));
  ASSERT_EQ(s.code, 0) << s.output;
  EXPECT_EQ(rows(path("s.csv")), 50);
  // k-rectified: a reflow of the reflow knows its k.
  const Outcome r2 = run_sdegen("reflow --checkpoint " + path("rf") + " --pairs 100 --solver euler --solver-steps 4 "
                                "--steps 20 --out " + path("rf2"));
  ASSERT_EQ(r2.code, 0) << r2.output;
  EXPECT_NE(r2.output.find("3-rectified flow"), std::string::npos) << r2.output;
  // Resuming to more steps reads the saved pairs instead of drawing new ones.
  const Outcome resumed = run_sdegen("reflow --checkpoint " + t + " --pairs 300 --steps 90 --resume --out " + path("rf"));
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_EQ(resumed.output.find("drawing"), std::string::npos) << resumed.output;
}

TEST_F(FewStepCli, DistillAndConsistencyTrainingSampleInAFewSteps) {
  const std::string t = teacher();
  const Outcome d = run_sdegen("distill --checkpoint " + t + " --method consistency --levels 6 --steps 40 --n-train 400 "
                               "--out " + path("cd"));
  ASSERT_EQ(d.code, 0) << d.output;
  for (const std::string& run : {path("cd"), std::string()}) {
    std::string dir = run;
    if (dir.empty()) {
      const Outcome c = run_sdegen("train --data moons --model consistency --steps 40 --width 16 --depth 2 --n-train 300 "
                                   "--out " + path("ct"));
      ASSERT_EQ(c.code, 0) << c.output;
      dir = path("ct");
    }
    const Outcome s = run_sdegen("sample --checkpoint " + dir + " --solver consistency --steps 2 --n 40 --out " +
                                 path("c.csv"));
    ASSERT_EQ(s.code, 0) << s.output;
    EXPECT_EQ(rows(path("c.csv")), 40);
    EXPECT_NE(s.output.find("2 function evaluations"), std::string::npos) << s.output;
    const Outcome e = run_sdegen("eval --checkpoint " + dir + " --n 200 --out " + path("e.json"));
    ASSERT_EQ(e.code, 0) << e.output;
    EXPECT_NE(e.output.find("none: the model is a map"), std::string::npos) << e.output;
    std::ifstream in(path("e.json"));
    const nlohmann::json j = nlohmann::json::parse(in);
    EXPECT_TRUE(j.at("energy").is_number()) << j.dump();
    EXPECT_TRUE(j.at("elbo").is_null());
    EXPECT_TRUE(j.at("log_likelihood").is_null());
    EXPECT_EQ(j.at("sample_nfe"), 1);
    // Another solver is refused for a consistency model, and the consistency solver for a flow.
    const Outcome heun = run_sdegen("sample --checkpoint " + dir + " --solver heun --out " + path("h.csv"));
    EXPECT_NE(heun.code, 0);
    EXPECT_NE(heun.output.find("--solver consistency"), std::string::npos) << heun.output;
  }
  const Outcome flow = run_sdegen("sample --checkpoint " + t + " --solver consistency --out " + path("f.csv"));
  EXPECT_NE(flow.code, 0);
  EXPECT_NE(flow.output.find("the consistency solver samples a consistency model"), std::string::npos) << flow.output;
}

TEST_F(FewStepCli, RefusesZeroPairsAndTeachersWithoutAProbabilityFlow) {
  const std::string t = teacher();
  const Outcome zero = run_sdegen("reflow --checkpoint " + t + " --pairs 0 --out " + path("z"));
  EXPECT_NE(zero.code, 0);
  EXPECT_NE(zero.output.find("--pairs"), std::string::npos) << zero.output;
  const Outcome sde = run_sdegen("train --data moons --model sde --steps 5 --width 8 --depth 1 --n-train 100 --n-val 50 "
                                 "--val-every 0 --out " + path("sde"));
  ASSERT_EQ(sde.code, 0) << sde.output;
  const Outcome d = run_sdegen("distill --checkpoint " + path("sde") + " --steps 5 --out " + path("d"));
  EXPECT_NE(d.code, 0);
  EXPECT_NE(d.output.find("no probability flow"), std::string::npos) << d.output;
  EXPECT_FALSE(fs::exists(path("d/checkpoint")));
  const Outcome r = run_sdegen("reflow --checkpoint " + path("sde") + " --pairs 10 --out " + path("r"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("has none"), std::string::npos) << r.output;
  // A checkpoint already in --out is refused before any pair is drawn.
  ASSERT_EQ(run_sdegen("reflow --checkpoint " + t + " --pairs 20 --steps 5 --out " + path("twice")).code, 0);
  const Outcome again = run_sdegen("reflow --checkpoint " + t + " --pairs 20 --steps 5 --out " + path("twice"));
  EXPECT_NE(again.code, 0);
  EXPECT_NE(again.output.find("already holds a checkpoint"), std::string::npos) << again.output;
}

}  // namespace
}  // namespace sdegen::test
