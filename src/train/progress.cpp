#include "sdegen/train/progress.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

namespace sdegen {

namespace {

constexpr int kBarWidth = 24;
constexpr double kRedrawSeconds = 0.1;

std::string time_left(const StepReport& r) {
  if (r.steps_per_second <= 0 || !std::isfinite(r.steps_per_second)) return "?";
  return format_duration(static_cast<double>(r.steps - r.step) / r.steps_per_second);
}

std::string metrics_text(const std::vector<Metric>& metrics) {
  std::ostringstream os;
  os << std::setprecision(6);
  for (const Metric& m : metrics) os << "  " << m.name << " " << m.value;
  return os.str();
}

std::string best_text(const StepReport& r) {
  if (!r.best) return "";
  std::ostringstream os;
  os << "  best " << r.best->name << " " << std::setprecision(5) << r.best->value << " @" << r.best_step;
  return os.str();
}

std::string bar_line(const StepReport& r) {
  const double done = r.steps > 0 ? static_cast<double>(r.step) / static_cast<double>(r.steps) : 1.0;
  const int filled = static_cast<int>(std::floor(done * kBarWidth));
  std::ostringstream os;
  os << "\r" << std::setw(static_cast<int>(std::to_string(r.steps).size())) << r.step << "/" << r.steps
     << " [" << std::string(filled, '#') << std::string(kBarWidth - filled, '.') << "] "
     << std::setw(3) << static_cast<int>(std::floor(100 * done)) << "%  loss " << std::setprecision(5)
     << r.loss << best_text(r) << "  " << std::fixed << std::setprecision(1) << r.steps_per_second
     << " steps/s  " << time_left(r) << " left\033[K";
  return os.str();
}

std::string plain_line(const StepReport& r) {
  std::ostringstream os;
  os << "step " << r.step << "/" << r.steps << "  loss " << std::setprecision(6) << r.mean_loss
     << "  lr " << std::setprecision(3) << r.lr << "  grad_norm " << r.grad_norm << "  "
     << std::fixed << std::setprecision(1) << r.steps_per_second << " steps/s  " << time_left(r)
     << " left" << metrics_text(r.validation) << best_text(r) << "\n";
  return os.str();
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto total = static_cast<int64_t>(std::llround(seconds));
  const int64_t h = total / 3600, m = (total / 60) % 60, s = total % 60;
  char buf[48];
  if (h > 0)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(h),
                  static_cast<long long>(m), static_cast<long long>(s));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(m), static_cast<long long>(s));
  return buf;
}

ProgressFn stream_progress(std::ostream& os, bool terminal) {
  if (!terminal)
    return [&os](const StepReport& r) {
      if (r.log_row) os << plain_line(r) << std::flush;
    };
  using Clock = std::chrono::steady_clock;
  auto last_draw = std::make_shared<Clock::time_point>();
  return [&os, last_draw](const StepReport& r) {
    const auto now = Clock::now();
    const bool last = r.step == r.steps || r.stopped_early;
    if (!r.validation.empty())
      os << "\r\033[Kstep " << r.step << ":" << metrics_text(r.validation) << "\n";
    if (last || !r.validation.empty() ||
        std::chrono::duration<double>(now - *last_draw).count() >= kRedrawSeconds) {
      os << bar_line(r) << (last ? "\n" : "") << std::flush;
      *last_draw = now;
    }
  };
}

ProgressFn stderr_progress() { return stream_progress(std::cerr, isatty(fileno(stderr)) != 0); }

}  // namespace sdegen
