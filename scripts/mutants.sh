#!/usr/bin/env bash
# Mutation check of the mathematics: applies small deliberate bugs (a coefficient, a sign, a
# dropped term, an off-by-one) one at a time to a scratch copy of the tree, rebuilds the test
# binaries that should notice, runs them, and reports for each bug whether some test failed.
# Slow: NOT part of CI; ctest never runs it. Measured on the 2-core machine: 864 s for the 49
# mutants once the scratch copy is built; building the copy the first time added about 45 minutes.
#
#   bash scripts/mutants.sh [FILTER]
#
# FILTER: an extended regex; only the mutants whose id matches it run (e.g. 'dopri5|rk4').
# Environment: SDEGEN_MUTANTS_DIR (scratch copy, default /tmp/sdegen-mutants; built once, kept
# for later runs, which copy only what changed and rebuild incrementally), SDEGEN_JOBS (build parallelism, default 2),
# SDEGEN_MUTANT_TIMEOUT (seconds per test binary, default 900), SDEGEN_MUTANTS_FULL=1 (run every
# target to the end, so each mutant's log lists every test it fails, not only the first).
#
# Each mutant is one line of MUTANTS below:
#   id | file | original text | replacement | test targets | the bug
# The original text must occur exactly once in the file (the script checks) and lie on one line.
# Targets are comma-separated test binaries, each optionally with a gtest filter (binary:filter).
# A description starting "equivalent:" marks a mutant that cannot change any result, and why;
# it is expected to survive and is reported as such.
set -euo pipefail

MUTANTS=$(cat <<'EOF'
sched-linear-bmin | src/process/schedules.cpp | explicit Linear(double b_min) : c_(1.0 - b_min) {} | explicit Linear(double b_min) : c_(1.0) {} | test_process | linear: b_min ignored (b = 1 - t)
sched-trig-dlambda | src/process/schedules.cpp | return kPi / (a(t) * b(t)); | return 0.5 * kPi / (a(t) * b(t)); | test_process | trig: lambda' halved
sched-vp-swap | src/process/schedules.cpp | if (name == "vp") return std::make_shared<Vp>(o.beta_min, o.beta_max); | if (name == "vp") return std::make_shared<Vp>(o.beta_max, o.beta_min); | test_process | vp: B0 and B1 exchanged (both ends unchanged)
sched-vp-dloga | src/process/schedules.cpp | Tensor dlog_a(const Tensor& t) const { return 0.5 * (b0 + (1.0 - t) * (b1 - b0)); } | Tensor dlog_a(const Tensor& t) const { return 0.5 * (b0 + t * (b1 - b0)); } | test_process | vp, sub-vp: d log a/dt with t in place of s = 1 - t
sched-subvp-lambda | src/process/schedules.cpp | return two_la - 2.0 * torch::log(-torch::expm1(two_la)); | return two_la - torch::log(-torch::expm1(two_la)); | test_process | sub-vp: lambda with vp's b
sched-cosine-c | src/process/schedules.cpp | c_(kPi / (2.0 * (1.0 + offset))) | c_(kPi / (2.0 + offset)) | test_process | vp-cosine: c = pi / (2 + o) for pi / (2 (1 + o))
sched-ve-form | src/process/schedules.cpp | Tensor b(const Tensor& t) const override { return smin_ * torch::exp((1.0 - t) * k_); } | Tensor b(const Tensor& t) const override { return smax_ * torch::exp(-t * k_); } | test_process | equivalent: s_min (s_max/s_min)^(1-t) = s_max (s_min/s_max)^t, the same b up to rounding
sched-edm-dlambda | src/process/schedules.cpp | return -2.0 * rho_ * (B_ - A_) / base(t); | return -rho_ * (B_ - A_) / base(t); | test_process | edm: lambda' halved
sched-loglinear-a | src/process/loglinear.cpp | Tensor LogLinearSchedule::a(const Tensor& t) const { return torch::sqrt(torch::sigmoid(lambda(t))); } | Tensor LogLinearSchedule::a(const Tensor& t) const { return torch::sigmoid(lambda(t)); } | test_process | loglinear: a = sigmoid(lambda), sqrt dropped
conv-score | src/param/prediction.cpp | case Prediction::Score: return -dn.noise / c.b; | case Prediction::Score: return -dn.noise * c.b; | test_param | conversion: score = -eps b
conv-velocity-det | src/param/prediction.cpp | const torch::Tensor det = c.a * c.db - c.b * c.da; | const torch::Tensor det = c.a * c.db + c.b * c.da; | test_param | conversion: velocity's determinant sign
conv-raw-score | src/param/prediction.cpp | case Prediction::Score: eps = -b * value, y = (x - b * eps) / a; break; | case Prediction::Score: eps = b * value, y = (x - b * eps) / a; break; | test_param,test_model | raw conversion: score to velocity, eps sign
drift-divergence | src/process/variational.cpp | if (dsigma2_dx.defined()) g = g + 0.5 * dsigma2_dx; | if (dsigma2_dx.defined()) g = g + dsigma2_dx; | test_process,test_eval | conditional drift: d(sigma^2)/dx not halved
drift-noise-term | src/process/variational.cpp | 0.5 * sigma * sigma * dev / (beta_ * beta_); | 0.5 * sigma * dev / (beta_ * beta_); | test_process,test_objective | conditional drift: sigma for sigma^2 in the score term
drift-sde-model | src/model/sde_model.cpp | const torch::Tensor g = m.dalpha + (m.dbeta - s * s / (2.0 * m.beta)) * eps; | const torch::Tensor g = m.dalpha + (m.dbeta - s * s / m.beta) * eps; | test_model | sde model: the score term of g not halved
weight-velocity | src/objective/weighting.cpp | case Prediction::Velocity: return 2.0 / (c.b * c.b * dlambda); | case Prediction::Velocity: return 2.0 / (c.b * dlambda); | test_objective,test_model | ELBO factor of a velocity prediction: b for b^2
weight-data | src/objective/weighting.cpp | case Prediction::Data: return half * (c.a * c.a) / (c.b * c.b); | case Prediction::Data: return half * c.a / c.b; | test_objective,test_model | ELBO factor of a data prediction: a/b for (a/b)^2
weight-v | src/objective/weighting.cpp | return half * c.a * c.a / (norm * norm); | return half * c.a * c.a / norm; | test_objective,test_model | ELBO factor of v-prediction: (a^2 + b^2) for its square (the same on vp)
weight-edm | src/objective/weighting.cpp | const torch::Tensor lambda_edm = (sigma * sigma + sd2) / (sigma * sigma * sd2); | const torch::Tensor lambda_edm = (sigma * sigma + sd2) / (sigma * sd2); | test_objective,test_model | EDM weight: sigma for sigma^2
weight-fused-native | src/model/affine_fused.cpp | case Weighting::Native: return (1.0 / c) * c; | case Weighting::Native: return c; | test_model | fused step: native weighting left at the ELBO's
reverse-sigma | src/process/generative.cpp | return spec.scale * std::sqrt(b * b * dl); | return spec.scale * std::sqrt(b * dl); | test_process,test_model,test_sample | reverse diffusion: sigma^2 = b lambda'
reverse-scale | src/process/generative.cpp | return spec.scale * std::sqrt(b * b * dl); | return std::sqrt(b * b * dl); | test_process,test_model,test_eval | reverse diffusion: the scale of reverse:SCALE dropped
marginal-sde-drift | src/process/generative.cpp | return v + 0.5 * sigma * sigma * s; | return v + sigma * sigma * s; | test_process,test_eval | marginal SDE: drift v + sigma^2 s
rk4-weights | src/solver/ode.cpp | return x + (k1 + 2 * k2 + 2 * k3 + k4) * (dt / 6); | return x + (k1 + 2 * k2 + k3 + 2 * k4) * (dt / 6); | test_solver | rk4: weights of k3 and k4 exchanged
rk4-raw-tableau | src/solver/ode_raw.cpp | {1.0 / 6, 1.0 / 3, 1.0 / 3, 1.0 / 6} | {1.0 / 6, 1.0 / 3, 1.0 / 6, 1.0 / 3} | test_solver | rk4 tableau (raw path): b3 and b4 exchanged
heun-stage-time | src/solver/ode.cpp | const torch::Tensor k2 = evaluate(f, t + dt, x + k1 * dt); | const torch::Tensor k2 = evaluate(f, t, x + k1 * dt); | test_solver | heun: second stage at the old time
midpoint-raw-c | src/solver/ode_raw.cpp | {{{}, {0.5}}, {0.0, 1.0}, {0.0, 0.5}} | {{{}, {0.5}}, {0.0, 1.0}, {0.0, 1.0}} | test_solver | midpoint tableau (raw path): c2 = 1
dopri5-a21 | src/solver/dopri5_tableau.h | constexpr double a21 = 1.0 / 5; | constexpr double a21 = 1.0 / 4; | test_solver | dopri5: a21
dopri5-c5 | src/solver/dopri5_tableau.h | c5 = 8.0 / 9; | c5 = 8.0 / 10; | test_solver | dopri5: fifth stage at the wrong time
dopri5-b6 | src/solver/dopri5_tableau.h | b6 = 11.0 / 84; | b6 = 11.0 / 85; | test_solver | dopri5: fifth-order weight b6
dopri5-e7 | src/solver/dopri5_tableau.h | e7 = -1.0 / 40; | e7 = -1.0 / 41; | test_solver | dopri5: error estimate weight e7 (the estimate becomes O(h))
adams-moments | src/solver/adams.cpp | moments.push_back(1.0 / static_cast<double>(moments.size() + 1)); | moments.push_back(1.0 / static_cast<double>(moments.size() + 2)); | test_solver | Adams: moments of v^j over [0, 1] off by one
adams-lagrange | src/solver/adams.cpp | next[j] -= c[j] * nodes[n] / d; | next[j] += c[j] * nodes[n] / d; | test_solver | Adams: Lagrange basis sign
adams-history | src/solver/adams.cpp | if (history.size() > static_cast<size_t>(o.order)) history.pop_back(); | if (history.size() > static_cast<size_t>(o.order) + 1) history.pop_back(); | test_solver | Adams: one history value too many (order + 1)
pc-langevin-noise | src/solver/sde.cpp | return x + eps * s + std::sqrt(2 * eps) * z; | return x + eps * s + std::sqrt(eps) * z; | test_solver | Langevin corrector: noise sqrt(eps) for sqrt(2 eps)
em-increment | src/solver/sde.cpp | return x + f * dt + diffusion_noise(diffusion, t, x) * std::sqrt(std::abs(dt)); | return x + f * dt + diffusion_noise(diffusion, t, x) * std::abs(dt); | test_solver | Euler-Maruyama: Brownian increment dt for sqrt(dt)
fp-upwind | src/eval/fokker_planck.cpp | v > 0 ? v * (p[i] + 0.5 * slopes_[i]) : v * (p[i + 1] - 0.5 * slopes_[i + 1]); | v > 0 ? v * (p[i + 1] - 0.5 * slopes_[i + 1]) : v * (p[i] + 0.5 * slopes_[i]); | test_eval | Fokker-Planck flux: downwind for upwind
fp-diffusivity | src/eval/fokker_planck.cpp | c.d_centres[i] = 0.5 * sigma[i] * sigma[i]; | c.d_centres[i] = sigma[i] * sigma[i]; | test_eval | Fokker-Planck: D = sigma^2 for sigma^2 / 2
fp-diffusion-flux | src/eval/fokker_planck.cpp | if (i + 1 < n) lp += d[i + 1] * p[i + 1] - d[i] * p[i]; | if (i + 1 < n) lp += d[i] * (p[i + 1] - p[i]); | test_eval | Fokker-Planck: D dp/dx for d(D p)/dx on the right face (the same for constant sigma)
oracle-dvar | src/eval/oracle.cpp | 2.0 * a * da * s2 + 2.0 * b_db}; | a * da * s2 + 2.0 * b_db}; | test_eval | oracle: d/dt of the component variances
grid-uniform | src/core/time_grid.cpp | grid[i] = o.t0 + (o.t1 - o.t0) * (i / n); | grid[i] = o.t0 + (o.t1 - o.t0) * (i / (n + 1)); | test_core,test_solver,test_sample | time grid: uniform points at i / (n + 1), the last step stretched
march-last-step | src/solver/solution.cpp | for (size_t i = 0; i + 1 < grid.size(); ++i) { | for (size_t i = 0; i + 2 < grid.size(); ++i) { | test_solver | grid walk: the last step dropped
elbo-time-range | src/model/affine_model.cpp | terms.drift = terms.drift + (hi - lo) * drift_terms(y, t, eps).elbo_integrand; | terms.drift = terms.drift + drift_terms(y, t, eps).elbo_integrand; | test_model | affine ELBO: the drift term's (t_hi - t_lo) factor dropped
elbo-affine-prior | src/model/affine_model.cpp | return total - ends.reconstruction.mean() + ends.prior.mean(); | return total - ends.reconstruction.mean(); | test_model | affine loss: the prior KL term dropped
elbo-reconstruction-norm | src/objective/elbo.cpp | return -0.5 * d * torch::log(2.0 * M_PI * d2) - dev / (2.0 * d2); | return -dev / (2.0 * d2); | test_objective,test_model | reconstruction: the Gaussian's normaliser dropped
elbo-sde-fused-recon | src/model/sde_fused.cpp | return integral - reconstruction; | return integral; | test_model | sde fused step: the reconstruction term dropped
elbo-sde-prior | src/model/sde_model.cpp | terms.prior = gaussian_kl_to_prior(start.alpha, start.beta, 1.0); | terms.prior = torch::zeros({n}, y.options()); | test_model | equivalent: q_0 = N(0, I) is built in (alpha(y, 0) = 0, beta(y, 0) = 1 exactly), so the prior KL and its gradient are exactly 0
lik-hutchinson | src/eval/likelihood.cpp | div = div / static_cast<double>(probes.size(0)); | div = div / static_cast<double>(probes.size(0) + 1); | test_eval | Hutchinson: mean over probes divided by probes + 1
lik-prior-std | src/eval/likelihood.cpp | - dim * (std::log(prior_std) + 0.5 * log_2pi); | - dim * 0.5 * log_2pi; | test_eval | likelihood: the prior's log std dropped (wrong for ve, edm)
cond-presence | src/net/network.cpp | return torch::cat({values * p, p}, 1); | return torch::cat({values, p}, 1); | test_model:ConditionVector.* | condition vector: an absent row's values reach the net
cond-null-rows | src/net/network.cpp | c.present = torch::cat({p, torch::zeros_like(p)}); | c.present = torch::cat({p, p}); | test_model:ConditionVector.* | guidance: the null half keeps the condition
cond-kernel-offset | src/net/mlp_kernel.cpp | std::memcpy(z + i * width + d + E, condition + i * C, sizeof(double) * static_cast<size_t>(C)); | std::memcpy(z + i * width + d, condition + i * C, sizeof(double) * static_cast<size_t>(C)); | test_model:ConditionVector.* | kernel: the condition written over the time features
fast-guidance | src/model/fast_sampler.cpp | for (int64_t e = 0; e < nd; ++e) v[e] = out[nd + e] + w * (out[e] - out[nd + e]); | for (int64_t e = 0; e < nd; ++e) v[e] = out[e] + w * (out[e] - out[nd + e]); | test_model:ConditionVector.* | fast sampler: guidance mixed from the conditional side
EOF
)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRATCH=${SDEGEN_MUTANTS_DIR:-/tmp/sdegen-mutants}
BUILD=$SCRATCH/build
JOBS=${SDEGEN_JOBS:-2}
TIMEOUT=${SDEGEN_MUTANT_TIMEOUT:-900}
FULL=${SDEGEN_MUTANTS_FULL:-0}
FILTER=${1:-}
LOGS=$SCRATCH/mutant-logs
START=$(date +%s)

trim() { sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' <<<"$1"; }

# The selected mutants, split on " | ".
declare -a IDS FILES ORIGS REPLS TARGETS DESCS
while IFS= read -r line; do
  [[ -z "$line" ]] && continue
  mapfile -t f < <(awk -F ' [|] ' '{ for (i = 1; i <= NF; i++) print $i }' <<<"$line")
  if [[ ${#f[@]} -ne 6 ]]; then
    echo "mutants.sh: malformed mutant line (want 6 fields separated by ' | '): $line" >&2
    exit 2
  fi
  id=$(trim "${f[0]}")
  if [[ -n "$FILTER" && ! "$id" =~ $FILTER ]]; then continue; fi
  IDS+=("$id") FILES+=("$(trim "${f[1]}")") ORIGS+=("$(trim "${f[2]}")") REPLS+=("$(trim "${f[3]}")")
  TARGETS+=("$(trim "${f[4]}")") DESCS+=("$(trim "${f[5]}")")
done <<<"$MUTANTS"
if [[ ${#IDS[@]} -eq 0 ]]; then
  echo "mutants.sh: no mutant id matches '$FILTER'" >&2
  exit 2
fi

# How often a text occurs in a file (literally: the text goes through the environment, so no
# character in it is special).
occurrences() {
  ORIG="$2" perl -0777 -ne 'my $o = $ENV{ORIG}; my $c = () = /\Q$o\E/g; print $c' "$1"
}

# The scratch copy: the tree without build outputs or git metadata, built once in full.
echo "== scratch copy: $SCRATCH"
mkdir -p "$SCRATCH"
# Files are copied only where their content differs (with a new time stamp, so that exactly they
# are rebuilt), and files gone from the tree are removed from the copy.
list_files() {
  (cd "$1" && find . \( -path './build*' -o -path ./.git -o -path ./runs -o -path ./mutant-logs \) -prune -o -type f -print | sort)
}
comm -13 <(list_files "$ROOT") <(list_files "$SCRATCH") | while IFS= read -r f; do rm -f "$SCRATCH/$f"; done
list_files "$ROOT" | while IFS= read -r f; do
  if ! cmp -s "$ROOT/$f" "$SCRATCH/$f"; then
    mkdir -p "$(dirname "$SCRATCH/$f")"
    cp "$ROOT/$f" "$SCRATCH/$f"
  fi
done
mkdir -p "$LOGS"
cmake -S "$SCRATCH" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSDEGEN_BUILD_EXAMPLES=OFF >/dev/null
echo "== full build (incremental after the first run)"
cmake --build "$BUILD" -j"$JOBS" >"$LOGS/build.log" 2>&1 || { tail -30 "$LOGS/build.log"; exit 1; }

# Every original text must be there exactly once before anything runs.
for i in "${!IDS[@]}"; do
  n=$(occurrences "$SCRATCH/${FILES[$i]}" "${ORIGS[$i]}")
  if [[ "$n" != 1 ]]; then
    echo "mutants.sh: ${IDS[$i]}: the original text occurs $n times in ${FILES[$i]} (want exactly 1): ${ORIGS[$i]}" >&2
    exit 2
  fi
done

# Runs the targets "bin[:filter],..." in order, stopping at the first failure; prints the first
# failing test, or nothing when all pass (the status says which).
run_targets() {
  local log=$1 spec=$2 first=""
  local -a specs
  IFS=',' read -r -a specs <<<"$spec"
  : >"$log"
  for s in "${specs[@]}"; do
    local bin=${s%%:*} filter="" rc=0 fast=--gtest_fail_fast
    if [[ "$s" == *:* ]]; then filter=${s#*:}; fi
    if [[ "$FULL" == 1 ]]; then fast=""; fi
    echo "== $bin ${filter:+--gtest_filter=$filter}" >>"$log"
    (cd "$BUILD" && SDEGEN_BIN="$BUILD/sdegen" SDEGEN_SOURCE_DIR="$SCRATCH" timeout "$TIMEOUT" \
      "./$bin" --gtest_brief=1 $fast ${filter:+--gtest_filter="$filter"}) >>"$log" 2>&1 || rc=$?
    if [[ $rc -ne 0 && -z "$first" ]]; then
      if [[ $rc -eq 124 ]]; then
        first="$bin: timed out after ${TIMEOUT} s"
      else
        local failed
        failed=$(sed -n "/^== $bin/,\$p" "$log" | grep -E '^\[  FAILED  \] [A-Za-z_]' | grep -v 'listed below' | head -1 |
          sed -e 's/^\[  FAILED  \] //' -e 's/, where GetParam.*//' -e 's/ (.*//' || true)
        first="$bin: ${failed:-exit code $rc}"
      fi
      if [[ "$FULL" != 1 ]]; then break; fi
    fi
  done
  echo "$first"
  [[ -z "$first" ]]
}

binaries_of() { tr ',' '\n' <<<"$1" | sed 's/:.*//' | sort -u; }

# Baseline: the unmutated tree passes every target, or no verdict below would mean anything.
mapfile -t ALL_SPECS < <(for t in "${TARGETS[@]}"; do tr ',' '\n' <<<"$t"; done | sort -u)
echo "== baseline: the unmutated tree on the ${#ALL_SPECS[@]} targets of ${#IDS[@]} mutants"
for s in "${ALL_SPECS[@]}"; do
  t0=$(date +%s)
  if ! out=$(run_targets "$LOGS/baseline.log" "$s"); then
    echo "mutants.sh: the unmutated tree fails $out; see $LOGS/baseline.log" >&2
    exit 1
  fi
  echo "   $s passes ($(($(date +%s) - t0)) s)"
done

APPLIED=""
restore() {
  if [[ -n "$APPLIED" ]]; then
    mv "$APPLIED.mutant-orig" "$APPLIED"
    touch "$APPLIED"  # newer than the mutant's object file: the next build recompiles it
    APPLIED=""
  fi
}
trap restore EXIT
trap 'restore; exit 130' INT TERM

echo "== mutants"
declare -a STATUS KILLER TOOK
for i in "${!IDS[@]}"; do
  id=${IDS[$i]} file=$SCRATCH/${FILES[$i]}
  t0=$(date +%s)
  cp -p "$file" "$file.mutant-orig"
  APPLIED=$file
  ORIG="${ORIGS[$i]}" REPL="${REPLS[$i]}" perl -0777 -i -pe 's/\Q$ENV{ORIG}\E/$ENV{REPL}/' "$file"
  if cmp -s "$file" "$file.mutant-orig"; then
    echo "mutants.sh: $id: the substitution did not change ${FILES[$i]}" >&2
    exit 2
  fi
  mapfile -t bins < <(binaries_of "${TARGETS[$i]}")
  if [[ " ${bins[*]} " == *" test_apps "* ]]; then bins+=(sdegen); fi
  printf '   %-26s ' "$id"
  if ! cmake --build "$BUILD" -j"$JOBS" --target "${bins[@]}" >"$LOGS/$id.build.log" 2>&1; then
    STATUS[$i]="NO BUILD" KILLER[$i]="see $LOGS/$id.build.log"
  elif killer=$(run_targets "$LOGS/$id.log" "${TARGETS[$i]}"); then
    STATUS[$i]="SURVIVED" KILLER[$i]="-"
  else
    STATUS[$i]="KILLED" KILLER[$i]=$killer
  fi
  restore
  TOOK[$i]=$(($(date +%s) - t0))
  echo "${STATUS[$i]}  ${KILLER[$i]}  (${TOOK[$i]} s)"
done
# Leave the scratch build matching the unmutated tree.
mapfile -t ALL_BINS < <(for t in "${TARGETS[@]}"; do binaries_of "$t"; done | sort -u)
cmake --build "$BUILD" -j"$JOBS" --target "${ALL_BINS[@]}" >"$LOGS/final-build.log" 2>&1 || true

killed=0 survived=0 equivalent=0 broken=0
echo
echo "== mutation report ($(date -u '+%Y-%m-%d %H:%M UTC'), tree $ROOT)"
printf '%-26s %-9s %s\n' "mutant" "result" "killed by (the first failing test); the bug (file)"
for i in "${!IDS[@]}"; do
  case ${STATUS[$i]} in
    KILLED) killed=$((killed + 1)) ;;
    SURVIVED)
      if [[ "${DESCS[$i]}" == equivalent:* ]]; then equivalent=$((equivalent + 1)); else survived=$((survived + 1)); fi ;;
    *) broken=$((broken + 1)) ;;
  esac
  printf '%-26s %-9s %s\n' "${IDS[$i]}" "${STATUS[$i]}" "${KILLER[$i]}"
  printf '%-36s %s (%s)\n' "" "${DESCS[$i]}" "${FILES[$i]}"
done
echo
echo "${#IDS[@]} mutants: $killed killed, $equivalent survived as equivalent mutants (reason given), $survived survived otherwise, $broken did not build"
echo "time: $(($(date +%s) - START)) s in all (scratch copy $SCRATCH, logs in $LOGS)"
[[ $survived -eq 0 && $broken -eq 0 ]]
