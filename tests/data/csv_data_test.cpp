// User CSV data: parsing, each kind of bad file with its message, standardisation round trips
// (tensors and JSON), the seeded split and the dimension check.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sdegen/core/error.h"
#include "sdegen/data/csv_data.h"
#include "support/support.h"

namespace sdegen {
namespace {

class CsvFile : public ::testing::Test {
 protected:
  std::string path = test::temp_path("csv_data_test.csv");
  // Written in binary so that "\r\n" reaches the file as is.
  void write(const std::string& text) { std::ofstream(path, std::ios::binary) << text; }
  void TearDown() override { std::remove(path.c_str()); }
};

// One test of a data spec's kind for train, eval, compare and distill: a name ending in .csv.
TEST(CsvName, IsANameEndingInDotCsv) {
  EXPECT_TRUE(is_csv_name("table.csv"));
  EXPECT_TRUE(is_csv_name("runs/a.b.csv"));
  EXPECT_FALSE(is_csv_name(".csv"));
  EXPECT_FALSE(is_csv_name("table.csv.json"));
  EXPECT_FALSE(is_csv_name("moons"));
  EXPECT_FALSE(is_csv_name("table.CSV"));
}

TEST_F(CsvFile, ReadsAHeaderAndWhitespace) {
  write("alpha, beta\n 1.5 ,-2\n3e-1,\t4\n\n  \n");
  const CsvData d = load_csv(path);
  EXPECT_EQ(d.path, path);
  EXPECT_EQ(d.columns, (std::vector<std::string>{"alpha", "beta"}));
  ASSERT_EQ(d.x.sizes(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(d.x.scalar_type(), torch::kDouble);
  EXPECT_TRUE(torch::equal(d.x, torch::tensor({{1.5, -2.0}, {0.3, 4.0}}, torch::kDouble)));
}

TEST_F(CsvFile, WithoutAHeaderNamesColumnsAndKeepsTheFirstRow) {
  write("1,2,3\n4,5,6");  // no final newline either
  const CsvData d = load_csv(path);
  EXPECT_EQ(d.columns, (std::vector<std::string>{"x1", "x2", "x3"}));
  EXPECT_EQ(d.x.size(0), 2);
  EXPECT_EQ(d.x[0][0].item<double>(), 1.0);
}

TEST_F(CsvFile, ToleratesCrlfQuotedHeadersAndAByteOrderMark) {
  write("\xEF\xBB\xBF\"x\",\"y\",\r\n1,2,3\r\n4,5,6\r\n\r\n");
  const CsvData d = load_csv(path);
  EXPECT_EQ(d.columns, (std::vector<std::string>{"x", "y", "x3"}));
  EXPECT_TRUE(torch::equal(d.x, torch::tensor({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}, torch::kDouble)));
}

TEST_F(CsvFile, RefusesBadFilesNamingLineAndColumn) {
  write("a,b\n1,2\n3,4\n5,6\n7,8\n9,10\n11,12,13\n");
  EXPECT_THROW_WITH(load_csv(path), InvalidArgument, "line 7 has 3 fields, expected 2");
  EXPECT_THROW_WITH(load_csv(path), InvalidArgument, "data file '" + path + "'");
  write("a,b\n1,2\n3,4\n5,abc\n");
  EXPECT_THROW_WITH(load_csv(path), InvalidArgument, "line 4, column 2: 'abc' is not a number");
  write("1,2\r\n3,4\r\n5,6\r\n7,8\r\nnan,1\r\n");
  EXPECT_THROW_WITH(load_csv(path), InvalidArgument, "line 5, column 1: non-finite value 'nan'");
  write("1,2\n3,-inf\n");
  EXPECT_THROW_WITH(load_csv(path), InvalidArgument, "line 2, column 2: non-finite value '-inf'");
  write("1,2\n3, \n");
  EXPECT_THROW_WITH(load_csv(path), InvalidArgument, "line 2, column 2: empty field");
  write("1,2\n\n3,4\n");
  EXPECT_THROW_WITH(load_csv(path), InvalidArgument, "line 2 is blank");
  write("1,2\n3\n");
  EXPECT_THROW_WITH(load_csv(path), InvalidArgument, "line 2 has 1 fields, expected 2");
}

TEST_F(CsvFile, RefusesFilesWithoutRows) {
  write("");
  EXPECT_THROW_WITH(load_csv(path), InvalidArgument, "no data rows");
  write("\n \r\n");
  EXPECT_THROW_WITH(load_csv(path), InvalidArgument, "no data rows");
  write("x,y\n\n");
  EXPECT_THROW_WITH(load_csv(path), InvalidArgument, "no data rows");
  EXPECT_THROW_WITH(load_csv("/nonexistent/dir/data.csv"), IoError, "'/nonexistent/dir/data.csv'");
}

TEST(Standardizer, TransformThenInverseRoundTrips) {
  torch::manual_seed(3);
  const torch::Tensor x =
      torch::randn({500, 3}) * torch::tensor({1.0, 10.0, 0.01}) + torch::tensor({5.0, -2.0, 100.0});
  const Standardizer s = fit_standardizer(x);
  const torch::Tensor z = s.transform(x);
  EXPECT_LT(z.mean(0).abs().max().item<double>(), 1e-12);
  EXPECT_LT((z.std(0, /*unbiased=*/false) - 1).abs().max().item<double>(), 1e-12);
  EXPECT_LT(test::max_abs_diff(s.inverse(z), x), 1e-12);
  // Float input stays float.
  EXPECT_EQ(s.transform(x.to(torch::kFloat)).scalar_type(), torch::kFloat);
  EXPECT_THROW_WITH(s.transform(torch::zeros({4, 2})), InvalidArgument,
                    "fitted on 3 columns, got data with 2");
}

TEST(Standardizer, ConstantColumnsAreCentredNotBlownUp) {
  const torch::Tensor x = torch::tensor({{1.0, 7.0}, {2.0, 7.0}, {3.0, 7.0}}, torch::kDouble);
  const Standardizer s = fit_standardizer(x);
  EXPECT_DOUBLE_EQ(s.std[1].item<double>(), kConstantColumnTolerance * 7.0);
  EXPECT_TRUE(torch::isfinite(s.transform(x)).all().item<bool>());
  EXPECT_EQ(s.transform(x).select(1, 1).abs().max().item<double>(), 0.0);
  // Model outputs of order 1 map back onto the constant.
  EXPECT_NEAR(s.inverse(torch::tensor({{0.0, 2.5}}, torch::kDouble))[0][1].item<double>(), 7.0, 1e-6);
  // A single row: every column is constant.
  EXPECT_TRUE((fit_standardizer(x.slice(0, 0, 1)).std > 0).all().item<bool>());
  EXPECT_THROW_WITH(fit_standardizer(torch::zeros({0, 2})), InvalidArgument, "empty data");
}

TEST(Standardizer, JsonRoundTripIsExactAndBadJsonIsRefused) {
  torch::manual_seed(4);
  const Standardizer s = fit_standardizer(torch::randn({50, 2}) * 3.3 + 0.1);
  const nlohmann::json j = nlohmann::json::parse(s.to_json().dump());
  const Standardizer back = Standardizer::from_json(j, 2);
  EXPECT_TRUE(torch::equal(back.mean, s.mean));
  EXPECT_TRUE(torch::equal(back.std, s.std));
  EXPECT_THROW_WITH(Standardizer::from_json(j, 3), InvalidArgument, "has 2 dimensions but the data has 3");
  const auto from = [](const char* text) { return Standardizer::from_json(nlohmann::json::parse(text)); };
  EXPECT_THROW_WITH(from(R"({"mean": [1]})"), InvalidArgument, "no \"std\" field");
  EXPECT_THROW_WITH(from(R"({"std": [1]})"), InvalidArgument, "no \"mean\" field");
  EXPECT_THROW_WITH(from(R"({"mean": [1, 2], "std": [1]})"), InvalidArgument,
                    "\"mean\" has 2 entries but \"std\" has 1");
  EXPECT_THROW_WITH(from(R"({"mean": [1], "std": [0]})"), InvalidArgument, "must be positive");
  EXPECT_THROW_WITH(from(R"({"mean": ["a"], "std": [1]})"), InvalidArgument, "must hold numbers");
  EXPECT_THROW_WITH(from(R"({"mean": [], "std": []})"), InvalidArgument, "non-empty list");
  EXPECT_THROW_WITH(from("[1, 2]"), InvalidArgument, "JSON object");
}

TEST(Split, SizesAndDeterminismUnderASeed) {
  const torch::Tensor x = torch::arange(100, torch::kDouble).unsqueeze(1);
  const TrainValSplit a = split_train_val(x, 0.2, 7);
  EXPECT_EQ(a.train.size(0), 80);
  EXPECT_EQ(a.val.size(0), 20);
  // A partition of the rows, each part in file order.
  EXPECT_TRUE(torch::equal(std::get<0>(torch::cat({a.train, a.val}).sort(0)), x));
  EXPECT_TRUE(torch::equal(std::get<0>(a.val.sort(0)), a.val));
  // The seed alone decides, whatever happened to the global generator.
  torch::manual_seed(123);
  const TrainValSplit b = split_train_val(x, 0.2, 7);
  EXPECT_TRUE(torch::equal(a.val, b.val));
  EXPECT_FALSE(torch::equal(a.val, split_train_val(x, 0.2, 8).val));
  EXPECT_EQ(split_train_val(x, 0.0, 7).val.size(0), 0);
  EXPECT_EQ(split_train_val(x.slice(0, 0, 5), 0.01, 7).val.size(0), 1);  // asked for some: gets one
}

TEST(Split, RefusesBadFractions) {
  const torch::Tensor x = torch::zeros({10, 2});
  EXPECT_THROW_WITH(split_train_val(x, 1.0, 0), InvalidArgument, "must be in [0, 1), got 1");
  EXPECT_THROW_WITH(split_train_val(x, -0.1, 0), InvalidArgument, "must be in [0, 1)");
  EXPECT_THROW_WITH(split_train_val(x, 0.97, 0), InvalidArgument, "leaves no training rows");
  EXPECT_THROW_WITH(split_train_val(torch::zeros({1, 2}), 0.5, 0), InvalidArgument,
                    "leaves no training rows");
}

TEST(CheckDimension, NamesTheSourceAndBothDimensions) {
  EXPECT_NO_THROW(check_dimension(2, 2, "a.csv"));
  EXPECT_THROW_WITH(check_dimension(2, 3, "points.csv"), InvalidArgument,
                    "data in 'points.csv' has 3 columns but the model was trained on 2");
}

}  // namespace
}  // namespace sdegen
