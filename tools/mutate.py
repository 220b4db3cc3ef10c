#!/usr/bin/env python
"""Mutation testing: does the suite notice a plausible bug in each method?

Each entry of the catalogue below changes one thing a developer could get
wrong without noticing (a sign, an index, a coefficient, a time, a stream, a
series term). The script applies each mutation alone to a scratch copy of the
tree, rebuilds the C core when a C file changed, runs the fast test subset and
reports which mutations the suite killed (some test failed), which survived
(every test passed: a gap in the suite) and which are stale (the text to
mutate is no longer in the source exactly once: update the catalogue).

    python tools/mutate.py                 # every mutation, fast subset
    python tools/mutate.py --list          # the catalogue
    python tools/mutate.py heun_corrector_time ddim_eta_squared
    python tools/mutate.py --tests tests/test_method_twins.py

Run it before resolving an issue that adds or changes a method, and add one
mutation per new method (or row kind, or kernel) to the catalogue. It exits
with status 1 when a mutation survives or is stale.
"""
import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLOW_TESTS = ("tests/test_interrupt.py", "tests/test_properties.py")
FIRST_TESTS = ("tests/test_method_twins.py", "tests/test_kernel_twins.py")


def fast_tests():
    """The fast subset (every test file but SLOW_TESTS), FIRST_TESTS first: the
    method twins pin every formula and kill most mutations in seconds, and
    pytest runs the files in the order given (with -x it stops at the first
    failure)."""
    found = sorted(os.path.relpath(os.path.join(folder, name), ROOT)
                   for folder, _, names in os.walk(os.path.join(ROOT, "tests"))
                   for name in names if name.startswith("test_") and name.endswith(".py"))
    rest = [p for p in found if p not in FIRST_TESTS + SLOW_TESTS]
    return [p for p in FIRST_TESTS if p in found] + rest


@dataclasses.dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    old: str
    new: str
    why: str  # the bug it stands for


CATALOGUE = [
    # -- the seven mutations the first audit found surviving -------------------
    Mutation("heun_corrector_time", "diffsde/methods/_heun.py",
             "t_end=view.t[k[:-1] - 1]", "t_end=view.t[k[:-1]]",
             "ode_heun's corrector stage evaluates a callable score at t_k instead of t_{k-1}"),
    Mutation("heun_last_step_other_end", "diffsde/methods/_heun.py",
             "last = view.affine(k[-1:], a[-1:], b[-1:], 0.0)",
             "last = view.affine(k[-1:], a_end[-1:], b_end[-1:], 0.0)",
             "ode_heun's final Euler step takes f and g at t_0 instead of t_1"),
    Mutation("ddim_eta_squared", "diffsde/methods/_chain.py",
             "sigma2 = eta**2 *", "sigma2 = eta *",
             "DDIM's sigma_eta^2 uses eta instead of eta^2"),
    Mutation("prior_from_step_stream", "diffsde/simulate.py",
             "key, STREAM_INITIAL)", "key, 0)",
             "reverse(shape=...) draws its prior start from the step-noise stream"),
    Mutation("respace_floor", "diffsde/chains.py",
             "np.round(np.arange(M + 1) * (N / M))", "np.floor(np.arange(M + 1) * (N / M))",
             "respace keeps floor(jN/M) instead of the nearest index"),
    Mutation("table_exp_drops_r5", "csrc/fastmath.h",
             "r * (1.0 / 24 + r * (1.0 / 120))", "r * (1.0 / 24)",
             "the C exp of the mixture weights drops the r^5 term of e^r"),
    Mutation("empirical_block_point_stride", "csrc/empirical_kernel.h",
             "memcpy(&y, yT + j * DSDE_EMP_LANES, sizeof y);", "memcpy(&y, yT + j * DSDE_EMP_BLOCK, sizeof y);",
             "the empirical logits step through the packed points by a register block, not a point vector"),
    Mutation("full_tile_lane_offset", "csrc/mixture_kernel.h",
             "memcpy(&dj[h], diff + j * W + h * DSDE_LANES, sizeof dj[h]);\n#pragma GCC unroll 4",
             "memcpy(&dj[h], diff + j * W + h * DSDE_LANES + 1, sizeof dj[h]);\n#pragma GCC unroll 4",
             "the full-covariance tile reads coordinate j of the next row"),
    Mutation("table_exp_next_entry", "csrc/fastmath.h",
             "double table_j = dsde_exp2_table[j];", "double table_j = dsde_exp2_table[(j + 1) & 127];",
             "the C exp multiplies by 2^((j + 1)/128) instead of 2^(j/128)"),
    Mutation("full_tile_second_vector_store", "csrc/mixture_kernel.h",
             "const int64_t at = (i + q) * W + h * DSDE_LANES;",
             "const int64_t at = (i + q) * W + (h ^ (q == 3)) * DSDE_LANES;",
             "the full tile's two-vector block swaps the rows of v_k it stores for the last precision row of a block"),
    Mutation("short_exp_bias", "csrc/fastmath.h",
             "uint64_t bias = (uint64_t)1023 << DSDE_EXP2_TABLE_BITS;",
             "uint64_t bias = (uint64_t)1022 << DSDE_EXP2_TABLE_BITS;",
             "the short exp of in-range weight blocks scales by 2^(e-1)"),
    Mutation("short_exp_floor", "csrc/fastmath.h",
             "#define DSDE_EXP_NORMAL_FLOOR -708.0", "#define DSDE_EXP_NORMAL_FLOOR -740.0",
             "blocks with weights down to e^-740 take the short exp, whose 2^e is no double there"),
    Mutation("reverse_diffusion_vp_first_order_a", "diffsde/methods/_chain.py",
             "2 - np.sqrt(1 - beta), beta, np.sqrt(beta)", "1 + beta / 2, beta, np.sqrt(beta)",
             "DDPM/VP reverse_diffusion with a = 1 + beta/2 (first-order consistent) for 2 - sqrt(1 - beta)"),
    # -- one or more per method, row kind and kernel -------------------------------
    Mutation("forward_em_sqrt_h", "diffsde/methods/_euler.py",
             "view.sde.diffusion(t) * np.sqrt(h), t=t)", "view.sde.diffusion(t) * h, t=t)",
             "forward EM noise scaled by h instead of sqrt(h)"),
    Mutation("reverse_em_alpha_factor", "diffsde/methods/_euler.py",
             "0.5 * (1 + alpha**2) * g2 * h", "0.5 * (1 + alpha) * g2 * h",
             "the alpha-family's score factor (1 + alpha)/2 instead of (1 + alpha^2)/2"),
    Mutation("reverse_em_drift_sign", "diffsde/methods/_euler.py",
             "return view.affine(k, 1 - h * f,", "return view.affine(k, 1 + h * f,",
             "reverse EM adds the forward drift instead of subtracting it"),
    Mutation("reverse_em_g_at_landing_time", "diffsde/methods/_euler.py",
             "g2 = view.sde.diffusion(view.t[k]) ** 2", "g2 = view.sde.diffusion(view.t[k - 1]) ** 2",
             "reverse EM takes g at t_{k-1} instead of the step's starting time t_k"),
    Mutation("ancestral_vp_scale", "diffsde/methods/_chain.py",
             "a, b = 1 / root, beta / root",
             "a, b = 1 / root, beta",
             "DDPM ancestral score coefficient beta instead of beta / sqrt(1 - beta)"),
    Mutation("ancestral_posterior_index", "diffsde/methods/_chain.py",
             "v = beta * -np.expm1(view.log_abar[k - 1]) / -np.expm1(view.log_abar[k])",
             "v = beta * -np.expm1(view.log_abar[k]) / -np.expm1(view.log_abar[k])",
             "posterior variance with abar_i where abar_{i-1} belongs"),
    Mutation("ancestral_ve_variance", "diffsde/methods/_chain.py",
             "v = view.sd[k - 1] ** 2 * d / view.sd[k] ** 2", "v = d",
             "SMLD ancestral with the reverse-diffusion variance instead of the posterior one"),
    Mutation("reverse_diffusion_ve_noise", "diffsde/methods/_chain.py",
             "return view.affine(k, 1.0, d, np.sqrt(d))", "return view.affine(k, 1.0, d, d)",
             "SMLD reverse_diffusion noise std d instead of sqrt(d)"),
    Mutation("forward_exact_transition", "diffsde/sde.py",
             "np.sqrt(np.maximum(s1 * s1 - (a * s0) ** 2, 0.0))",
             "np.sqrt(np.maximum(s1 * s1 - (s0) ** 2, 0.0))",
             "exact transition std without the a^2 factor"),
    Mutation("langevin_r_one", "diffsde/methods/_langevin.py",
             "r = np.exp(view.log_abar[k] - view.log_abar[k - 1])", "r = np.ones(k.size)",
             "the VP Langevin corrector's r = 1 - beta dropped"),
    Mutation("langevin_step_factor", "csrc/step_kernel.h",
             "double eps = 2.0 * r * (q * q);", "double eps = r * (q * q);",
             "Langevin step r q^2 instead of 2 r q^2"),
    Mutation("langevin_noise_factor", "csrc/step_kernel.h",
             "tsd = (DSDE_T)sqrt(2.0 * eps);", "tsd = (DSDE_T)sqrt(eps);",
             "Langevin noise sqrt(eps) instead of sqrt(2 eps)"),
    Mutation("score_row_state_term_dropped", "csrc/driver_kernel.h",
             "if (w[0] != 0.0)\n            terms[nt] = at", "if (0)\n            terms[nt] = at",
             "a score row w0 x + w1 s(x) (a denoised value) loses its w0 x term"),
    Mutation("user_noise_for_every_stream", "csrc/driver.c",
             "run->noise != NULL && tb->stream[r] == 0 ?", "run->noise != NULL ?",
             "a user noise array replaces the corrector's and in-step streams too, not only stream 0"),
    Mutation("vp_marginal_std", "diffsde/sde.py",
             "return np.exp(-0.5 * big_b), np.sqrt(-np.expm1(-big_b))",
             "return np.exp(-0.5 * big_b), np.sqrt(-np.expm1(-0.5 * big_b))",
             "VP marginal std sqrt(1 - e^{-B/2})"),
    Mutation("subvp_diffusion", "diffsde/sde.py",
             "np.sqrt(self.beta(t) * -np.expm1(-2 * big_b))", "np.sqrt(self.beta(t) * -np.expm1(-big_b))",
             "sub-VP g^2 = beta (1 - e^{-B}) instead of beta (1 - e^{-2B})"),
    # -- the built-in score kernels (killed by tests/test_kernel_twins.py) -------
    Mutation("full_cov_rotation_transposed", "csrc/scores.c",
             "yi += U[j * d + i] * (mmu[j] - w->xd[j]);", "yi += U[i * d + j] * (mmu[j] - w->xd[j]);",
             "full-covariance score rotates by U_k instead of U_k^T (a swapped index)"),
    Mutation("mixture_logdet_dropped", "csrc/scores.c",
             "term[k] = 0.5 * (LOG_2PI + log(c));", "term[k] = 0.5 * LOG_2PI;",
             "mixture log-normalizer without the log det C_k term (components of several variances)"),
    Mutation("full_cov_precision_transposed", "csrc/scores.c",
             "acc += (U[i * d + l] * inv_c[l]) * U[j * d + l];",
             "acc += (U[l * d + i] * inv_c[l]) * U[l * d + j];",
             "precision matrices U^T diag(1/c) U instead of U diag(1/c) U^T (a swapped index)"),
    Mutation("isotropic_logdet_repeat_off_by_one", "csrc/scores.c",
             "            n -= (int64_t)k;\n", "            n -= (int64_t)k + 1;\n",
             "one equal log term too few in the binade-by-binade sum of an isotropic log-normalizer"),
    Mutation("mixture_tile_half_dropped", "csrc/mixture_kernel.h",
             "            lk[r] = lnk - 0.5 * lk[r];", "            lk[r] = lnk - lk[r];",
             "vectorized mixture logits without the 1/2 of the quadratic form (diagonal tile, d != 2)"),
    Mutation("mixture_tile_d2_half_dropped", "csrc/mixture_kernel.h",
             "double l = lnk - 0.5 * acc;", "double l = lnk - acc;",
             "vectorized mixture logits without the 1/2 of the quadratic form (diagonal tile, d = 2)"),
    Mutation("mixture_tile_d2_score_sign", "csrc/mixture_kernel.h",
             "gT[j * W + r] += lk[r] * ((mk[j] - xT[j * W + r]) * ick[j]);",
             "gT[j * W + r] += lk[r] * ((mk[j] + xT[j * W + r]) * ick[j]);",
             "the d = 2 tile sums (m mu + x) / c instead of (m mu - x) / c after the first component"),
    Mutation("mixture_row_half_dropped", "csrc/mixture_kernel.h",
             "logit[k] = a->lognorm[k] - 0.5 * lk;", "logit[k] = a->lognorm[k] - lk;",
             "one-row mixture logits (large d) without the 1/2 of the quadratic form"),
    Mutation("mixture_exp_floor_raised", "csrc/mixture_kernel.h",
             "#define DSDE_EXP_FLOOR -750.0", "#define DSDE_EXP_FLOOR -700.0",
             "mixture weights clamped at e^-700, above the subnormal range, instead of at e^-750"),
    Mutation("philox_lanes_key_dropped", "csrc/normal_kernel.h",
             "c2 = (p0 >> 32) ^ c3 ^ k1;", "c2 = (p0 >> 32) ^ c3;",
             "the x86-64 Philox lanes forget the key word k1 in one half of a round"),
    Mutation("uniform_word_order", "csrc/rng.c",
             "((((uint64_t)w.v[2 * e + 1]) << 32) | w.v[2 * e]) >> 11;",
             "((((uint64_t)w.v[2 * e]) << 32) | w.v[2 * e + 1]) >> 11;",
             "float64 uniforms built with the Philox words swapped (low word on top)"),
    Mutation("empirical_unweighted", "csrc/empirical_kernel.h",
             "s0 = s0 + logit[i] * y;", "s0 = s0 + y;",
             "empirical score sums the points without the softmax weight (first row of a group)"),
    Mutation("empirical_total_not_rescaled", "csrc/empirical_kernel.h",
             "tot[r * DSDE_EMP_LANES + l] *= shrink;", "tot[r * DSDE_EMP_LANES + l] *= 1.0;",
             "empirical running log-sum-exp rescales the weighted sum but not the total"),
    Mutation("empirical_not_centred", "csrc/empirical_kernel.h",
             "double v = xr[j] - m * a->center[j];", "double v = xr[j];",
             "empirical rows not moved by m times the data's centre"),
    # -- the chain methods, chain schedules and options (killed by the method twins) --
    Mutation("ancestral_last_step_noise_ignored", "diffsde/methods/_chain.py",
             "    if not last_step_noise:\n", "    if True:\n",
             "ancestral drops the last step's noise even with last_step_noise=True"),
    Mutation("smld_posterior_absolute_sigma", "diffsde/methods/_chain.py",
             "v = view.sd[k - 1] ** 2 * d / view.sd[k] ** 2", "v = view.sigma2[k - 1] * d / view.sigma2[k]",
             "SMLD ancestral variance from the absolute sigma_{i-1}^2 / sigma_i^2, wrong when sigma_0 > 0"),
    Mutation("ddim_a_coefficient", "diffsde/methods/_chain.py",
             "a = np.exp(0.5 * (view.log_abar[k - 1] - view.log_abar[k]))",
             "a = np.exp(view.log_abar[k - 1] - view.log_abar[k])",
             "DDIM's x coefficient abar_{i-1}/abar_i instead of its square root"),
    Mutation("ddim_direction_without_sigma", "diffsde/methods/_chain.py",
             "np.sqrt(np.maximum(one_minus_prev - sigma2, 0.0) * one_minus_now)",
             "np.sqrt(np.maximum(one_minus_prev, 0.0) * one_minus_now)",
             "DDIM's direction term sqrt(1 - abar_{i-1}) eps without the - sigma_eta^2"),
    Mutation("heun_score_weight", "diffsde/methods/_heun.py",
             "return 1 - h * sde.drift_coefficient(t), 0.5 * h * sde.diffusion(t) ** 2",
             "return 1 - h * sde.drift_coefficient(t), h * sde.diffusion(t) ** 2",
             "ode_heun's ODE with g^2 s instead of g^2 s / 2 (the reverse SDE's drift)"),
    Mutation("langevin_after_step_at_start_time", "diffsde/methods/_langevin.py",
             "else view.run_order()[:-1] - 1", "else view.run_order()[:-1]",
             "corrector_at_start=False corrects at the step's starting time, not where it landed"),
    Mutation("vp_chain_law_abar0", "diffsde/methods/_view.py",
             "log_abar = -big_b[0] + np.r_[", "log_abar = np.r_[",
             "chain methods on a VP SDE with t_end > 0 take abar_0 = 1 instead of e^{-B(t_end)}"),
    Mutation("as_sde_right_interval", "diffsde/schedules.py",
             "np.ceil(np.asarray(t) * (n / T) - 1e-9)", "np.ceil(np.asarray(t) * (n / T) + 1e-9)",
             "a chain's as_sde takes the interval right of a grid point (beta_{k+1} at t_k)"),
    Mutation("ddpm_forward_chain_first_order", "diffsde/chains.py",
             "return np.sqrt(1 - self.betas), np.sqrt(self.betas)",
             "return 1 - self.betas / 2, np.sqrt(self.betas)",
             "DDPM's forward chain step with 1 - beta/2 for sqrt(1 - beta)"),
    Mutation("smld_forward_chain_sigma_diff", "diffsde/chains.py",
             "return np.ones(self.N), np.sqrt(np.diff(self._full**2))",
             "return np.ones(self.N), np.diff(self._full)",
             "SMLD's forward chain noise sigma_i - sigma_{i-1} instead of sqrt(sigma_i^2 - sigma_{i-1}^2)"),
    Mutation("ddpm_linear_off_by_one", "diffsde/chains.py",
             "return cls(np.linspace(beta_start, beta_end, N), T)",
             "return cls(np.linspace(beta_start, beta_end, N + 1)[1:], T)",
             "DDPM.linear drops beta_start (N + 1 points, the first removed)"),
    Mutation("ddpm_rule_linear_left_riemann", "diffsde/chains.py",
             "betas = np.linspace(sched.beta_min * vp.T / N, sched.beta_max * vp.T / N, N)",
             "betas = vp.beta(grid[:-1]) * (vp.T / N)",
             "from_sde(rule='linear') as the left Riemann sum (beta_N = beta(t_{N-1}) T/N)"),
    Mutation("ddpm_rule_riemann_left", "diffsde/chains.py",
             "betas = vp.beta(grid[1:]) * (vp.T / N)", "betas = vp.beta(grid[:-1]) * (vp.T / N)",
             "from_sde(rule='riemann') with beta(t_{i-1}) instead of beta(t_i)"),
    Mutation("ddpm_rule_exact_first_order", "diffsde/chains.py",
             "betas = -np.expm1(-np.diff(vp.integrated_beta(grid)))",
             "betas = np.diff(vp.integrated_beta(grid))",
             "from_sde(rule='exact') with beta_i = B(t_i) - B(t_{i-1}) instead of 1 - e^{-(...)}"),
    Mutation("smld_from_sde_clean_sigma0", "diffsde/chains.py",
             "return cls(sig[1:], sig[0], ve.T)", "return cls(sig[1:], 0.0, ve.T)",
             "SMLD.from_sde starts from clean data (sigma_0 = 0) instead of sigma_min"),
    # -- argument validation (killed by tests/test_validation.py, tests/test_bad_input.py) --
    Mutation("validation_positive_admits_zero", "diffsde/_validation.py",
             '"positive": (lambda v, b: v > 0,', '"positive": (lambda v, b: v >= 0,',
             "a positive real accepts 0 (a zero step, std or T)"),
    Mutation("validation_integer_off_by_one", "diffsde/_validation.py",
             "if out < low or (high is not None and out > high):",
             "if out < low - 1 or (high is not None and out > high):",
             "an int one below its lower bound passes (steps=0, n=-1)"),
    Mutation("validation_integer_takes_floats", "diffsde/_validation.py",
             "not isinstance(value, numbers.Integral):", "not isinstance(value, numbers.Real):",
             "a float count is truncated instead of refused"),
    Mutation("validation_nan_passes", "diffsde/_validation.py",
             "if not math.isfinite(out) or not test(out, bound):", "if not test(out, bound):",
             "NaN and infinities pass a real check"),
    # -- the step table's width and the builders' fast path (tests/test_table_width.py) --
    Mutation("trusted_builder_admits_negative_sd", "diffsde/_steptable.py",
             "if sd is not None and sd.size and not sd.min() >= 0:", "if False:",
             "StepTable.affine/heun skip the constructor and no longer refuse a negative sd"),
    Mutation("score_row_in_one_term_table", "csrc/driver.c",
             "(tb->width >= 2 || (kind != DSDE_ROW_SCORE && kind != DSDE_ROW_LANGEVIN))", "1",
             "C runs a score row of a one-term table, reading its w1 from the next row"),
    Mutation("table_stride_fixed", "csrc/driver_kernel.h",
             "const double *w = tb->w + r * tb->width;", "const double *w = tb->w + r * DSDE_MAX_TERMS;",
             "C reads the weights with the old fixed stride of 8 terms"),
    # -- time grids and timestep spacings ----------------------------------------
    Mutation("ramp_n_plus_one", "diffsde/grids.py",
             "start + (stop - start) * (np.arange(n + 1) / n) ** power",
             "start + (stop - start) * (np.arange(n + 1) / (n + 1)) ** power",
             "the ramp of every grid (and of steps=) divides by the number of points instead of steps"),
    Mutation("karras_ramp_ends_swapped", "diffsde/grids.py",
             "_ramp(sigma_max ** (1 / rho), sigma_min ** (1 / rho), n) ** rho",
             "_ramp(sigma_min ** (1 / rho), sigma_max ** (1 / rho), n) ** rho",
             "karras's ramp runs from sigma_min up to sigma_max"),
    Mutation("quadratic_linear", "diffsde/grids.py",
             "_ramp(t_end, t_start, n, power=2)", "_ramp(t_end, t_start, n)",
             "the quadratic grid is uniform"),
    Mutation("logsnr_uniform_in_sigma", "diffsde/grids.py",
             "inner[1:-1] = process.t_of_lambda(lams[1:-1])",
             "inner[1:-1] = process.t_of_sigma(np.linspace(np.exp(-lam0), np.exp(-lam1), n + 1)[1:-1])",
             "the logSNR grid is equally spaced in sigma, not in log sigma"),
    Mutation("respace_leading_timestep_is_index", "diffsde/chains.py",
             "np.arange(M) * (N // M) + 1 + steps_offset", "np.arange(M) * (N // M) + steps_offset",
             "respace takes a diffusers timestep tau as chain index tau instead of tau + 1"),
    Mutation("respace_linspace_timestep_is_index", "diffsde/chains.py",
             "np.round(np.linspace(0, N - 1, M)).astype(np.int64) + 1]", "np.round(np.linspace(0, N, M)).astype(np.int64)]",
             "linspace spacing spans 0..N in chain indices instead of diffusers' timesteps 0..N-1"),
    Mutation("grids_chain_by_attributes", "diffsde/grids.py",
             "    if is_chain(process):", '    if hasattr(process, "respace") and hasattr(process, "N"):',
             "the grids take any process with respace and N for a chain (duck typing, not the marker)"),
    Mutation("is_chain_by_int_N", "diffsde/_protocol.py",
             'return isinstance(caps, frozenset) and "chain" in caps',
             'return isinstance(getattr(process, "N", None), int) or (isinstance(caps, frozenset) and "chain" in caps)',
             "a user's process with an int N is taken for a chain and read at index round(t N / T)"),
    # -- prediction types and network scores -------------------------------------
    Mutation("v_prediction_sign", "diffsde/predictions.py",
             "return (x * s + pred * m) * (-1.0 / s)", "return (x * s - pred * m) * (-1.0 / s)",
             "score_from_v reads v as s x0 - m eps (the sign convention flipped)"),
    Mutation("velocity_determinant", "diffsde/predictions.py",
             "det = m * ds - dm * s", "det = m * ds + dm * s",
             "score_from_velocity solves u = m' x0 + s' eps with the wrong sign in m s' - m' s"),
    Mutation("x0_missing_m", "diffsde/predictions.py",
             "return (pred * m - x) * (1.0 / (s * s))", "return (pred - x) * (1.0 / (s * s))",
             "score_from_x0 drops m (right on VE and EDM only)"),
    Mutation("sigma_time_unscaled", "diffsde/_frameworks.py",
             "value, scale = s / m, 1.0 / m", "value, scale = s / m, 1.0",
             "time='sigma' gives the denoiser x instead of k-diffusion's x / m"),
    Mutation("index_time_off_by_one", "diffsde/_frameworks.py",
             "value = int(round(float(t) * self.process.N / self.process.T)) - 1",
             "value = int(round(float(t) * self.process.N / self.process.T))",
             "time='index' passes chain index i instead of diffusers' timestep i - 1"),
    Mutation("autograd_trace_column", "diffsde/_frameworks.py",
             "trace += vjp(cot, j == d - 1).reshape(b, -1)[:, j].double()",
             "trace += vjp(cot, j == d - 1).reshape(b, -1)[:, 0].double()",
             "the exact autograd divergence sums the first column's entries instead of the diagonal"),
    # -- the k-diffusion samplers (diffsde/methods/_ksamplers.py) ---------------
    Mutation("dpmpp_2m_step_ratio_inverted", "diffsde/methods/_ksamplers.py",
             "half_inv_r = np.where(k > 0, 0.5 * h / h_prev, 0.0)",
             "half_inv_r = np.where(k > 0, 0.5 * h_prev / h, 0.0)",
             "DPM-Solver++(2M) uses r = h_i/h_{i-1} instead of h_{i-1}/h_i (equal on uniform lambda grids)"),
    Mutation("dpmpp_sde_stage_weight", "diffsde/methods/_ksamplers.py",
             "fac = 1.0 / (2.0 * r)", "fac = 1.0 / r",
             "dpmpp_sde weighs the stage's denoised value by 1/r instead of 1/(2r)"),
    Mutation("dpmpp_sde_independent_increments", "diffsde/methods/_ksamplers.py",
             "(c2 * np.sqrt(a / b), Z, None), (c2 * np.sqrt((b - a) / b), Z2, None)",
             "(0.0, Z, None), (c2, Z2, None)",
             "dpmpp_sde's second noise an independent draw, not the Brownian increment from sigma_i"),
    Mutation("heun_corrector_slope_sigma", "diffsde/methods/_ksamplers.py",
             "half_a, half_b = dt_h / (2 * sh_h), dt_h / (2 * s1h)",
             "half_a, half_b = dt_h / (2 * sh_h), dt_h / (2 * sh_h)",
             "EDM Heun's second slope divided by sigma_hat instead of sigma_{i+1}"),
    Mutation("churn_noise_std", "diffsde/methods/_ksamplers.py",
             "c = s_noise * np.sqrt(sh[k] ** 2 - s[k] ** 2)", "c = s_noise * (sh[k] - s[k])",
             "the churn adds noise of std sigma_hat - sigma instead of sqrt(sigma_hat^2 - sigma^2)"),
    Mutation("dpmpp_3m_phi3_sign", "diffsde/methods/_ksamplers.py",
             "phi3 = phi2 / he - 0.5", "phi3 = phi2 / he + 0.5",
             "DPM-Solver++(3M) SDE's phi_3 = phi_2/h + 1/2 instead of - 1/2"),
    Mutation("lms_history_slot", "diffsde/methods/_ksamplers.py",
             "terms.append((c[:, j], RING + np.maximum(k - j, 0) % order, None))",
             "terms.append((c[:, j], RING + np.maximum(k - j - 1, 0) % order, None))",
             "LMS reads its history one step too old"),
    Mutation("ancestral_tail_without_s_noise", "diffsde/methods/_ksamplers.py",
             "c = np.where(s1 > 0, s_noise * up, 0.0)", "c = np.where(s1 > 0, up, 0.0)",
             "the shared ancestral tail ignores s_noise (euler_ancestral, ddim, dpmpp_2s_ancestral)"),
    Mutation("sigma_euler_keeps_x", "diffsde/methods/_ksamplers.py",
             "[(ratio, X, m_in), (1 - ratio, D, None), *noise]", "[(ratio, X, m_in), (1 - ratio, D, m_in), *noise]",
             "the shared sigma-space Euler step treats the denoised value as a state (divides it by m)"),
    Mutation("sampler_normals_on_step_index", "diffsde/methods/_ksamplers.py",
             "return noise_rows(register, g.interval[steps], stream, steps)",
             "return noise_rows(register, steps, stream, steps)",
             "a k-diffusion sampler draws step i's normal on interval i, not N - 1 - i"),
    Mutation("ancestral_split_up", "diffsde/methods/_sigma.py",
             "eta * np.sqrt(sigma_next ** 2 * (sigma ** 2 - sigma_next ** 2) / sigma ** 2)",
             "eta * np.sqrt(sigma_next ** 2 * (sigma ** 2 - sigma_next ** 2)) / sigma ** 2",
             "sigma_up divides by sigma^2 outside the square root"),
    # -- dpm_solver, unipc, plms (sigma/lambda register programs) ------------------
    Mutation("dpm_solver_3_final_weight", "diffsde/methods/_dpm_solver.py",
             "cf = s1 / r2 * (em1 / h - 1)", "cf = s1 / r1 * (em1 / h - 1)",
             "DPM-Solver-3's last stage divided by r1 instead of r2"),
    Mutation("dpm_solver_2_weight", "diffsde/methods/_dpm_solver.py",
             "c = s1 / (2 * r1) * em1", "c = s1 / r1 * em1",
             "DPM-Solver-2's correction without its 1/2"),
    Mutation("dpm_solver_denoising_step_m", "diffsde/methods/_dpm_solver.py",
             "st.m1[j] * st.s0[j] ** 2 / st.m0[j]", "st.s0[j] ** 2 / st.m0[j]",
             "the denoising step to s = 0 forgets the new mean coefficient m'"),
    Mutation("dpm_solver_chain_stage_m", "diffsde/methods/_dpm_solver.py",
             "m = 1.0 / np.sqrt(1.0 + sigma * sigma)", "m = 1.0 / (1.0 + sigma * sigma)",
             "a DDPM chain's stage between indices gets m^2 for m"),
    Mutation("unipc_corrector_rho", "diffsde/methods/_unipc.py",
             "rho[p == 1, 2] = 0.5", "rho[p == 1, 2] = 1.0",
             "UniC-1's rho 1 instead of 1/2"),
    Mutation("unipc_predictor_rho", "diffsde/methods/_unipc.py",
             "rho[p == 2, 0] = 0.5", "rho[p == 2, 0] = 1.0",
             "UniP-2's rho 1 instead of 1/2"),
    Mutation("unipc_b_factorial", "diffsde/methods/_unipc.py",
             "fact *= k + 1", "fact *= k",
             "UniPC's b_k = k! phi_{k+1}/B(h) with the wrong factorial"),
    Mutation("unipc_bh1_ignored", "diffsde/methods/_unipc.py",
             'b_h = hh if variant == "bh1" else h_phi_1', "b_h = h_phi_1",
             "variant='bh1' silently runs bh2"),
    Mutation("plms_ab4_weight", "diffsde/methods/_plms.py",
             "37 / 24, -9 / 24)", "37 / 24, -8 / 24)",
             "PLMS's fourth Adams-Bashforth weight"),
    Mutation("plms_prk_middle_time", "diffsde/methods/_plms.py",
             "0.5 * (st.t0[j] + st.t1[j])", "st.t1[j] + 0.0 * st.t0[j]",
             "PRK's middle stages at the end of the step"),
    Mutation("plms_prk_last_weight", "diffsde/methods/_plms.py",
             "(c / 6, E4)", "(c / 3, E4)",
             "PRK's eps_4 weighted 1/3 instead of 1/6"),
    Mutation("plms_ab_first_step", "diffsde/methods/_plms.py",
             "(c1[0] / 2, E2)", "(c1[0] / 3, E2)",
             "warmup='ab': the first step's mean of two noise predictions misweighted"),
    Mutation("budget_steps_strict", "diffsde/analysis.py",
             "lo, hi = (mid, hi) if nfe_of(mid) <= budget", "lo, hi = (mid, hi) if nfe_of(mid) < budget",
             "error_vs_nfe stops one evaluation short of the budget"),
    Mutation("budget_steps_per_step", "diffsde/analysis.py",
             "steps = sorted({_steps_within(b, lambda n: tables(n).nfe) for b in budgets})",
             "steps = sorted({max(1, round(b / max(record.nfe_per_step, 1))) for b in budgets})",
             "error_vs_nfe sizes runs by the most evaluations of one step (plms's warm-up on every step)"),
]


def tracked_files(root):
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=root, check=True, capture_output=True).stdout
    return [p for p in out.decode().split("\0") if p and os.path.isfile(os.path.join(root, p))]


def copy_tree(root, dest):
    for rel in tracked_files(root):
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(root, rel), target)


def build(tree):
    # --force: setuptools rebuilds only when a source is newer than the
    # module, compared in whole seconds, so a mutation written in the second
    # the previous build finished would be tested against the previous build
    proc = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace", "--force"], cwd=tree,
                          capture_output=True, text=True)
    return proc.returncode == 0, proc.stdout + proc.stderr


def run_tests(tree, tests, timeout):
    env = dict(os.environ, PYTHONPATH=tree)
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:nbmake",
           "-o", "addopts=", *tests]
    try:
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "killed", "timeout"
    if proc.returncode == 0:
        return "survived", ""
    failed = [line.split(" ", 1)[1].split(" - ")[0] for line in proc.stdout.splitlines()
              if line.startswith(("FAILED ", "ERROR "))]
    return "killed", failed[0] if failed else f"exit {proc.returncode}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="mutations to run (default: all)")
    parser.add_argument("--list", action="store_true", help="print the catalogue and exit")
    parser.add_argument("--tests", nargs="+", default=None,
                        help="pytest arguments (default: the fast subset, every test file but "
                             + ", ".join(SLOW_TESTS) + ")")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per mutation run")
    args = parser.parse_args(argv)
    by_name = {m.name: m for m in CATALOGUE}
    unknown = [n for n in args.names if n not in by_name]
    if unknown:
        parser.error(f"unknown mutation(s) {unknown}; --list shows the catalogue")
    chosen = [by_name[n] for n in args.names] or CATALOGUE
    if args.list:
        for m in chosen:
            print(f"{m.name:36s} {m.path:22s} {m.why}")
        return 0

    tests = args.tests or fast_tests()
    rows, start = [], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="diffsde-mutate-") as tree:
        copy_tree(ROOT, tree)
        ok, log = build(tree)
        if not ok:
            print(log)
            return 2
        for m in chosen:
            path = os.path.join(tree, m.path)
            with open(path) as fh:
                pristine = fh.read()
            began = time.perf_counter()
            if pristine.count(m.old) != 1:
                status, detail = "stale", f"the text occurs {pristine.count(m.old)} times"
            else:
                with open(path, "w") as fh:
                    fh.write(pristine.replace(m.old, m.new))
                is_c = m.path.startswith("csrc/")
                built, log = build(tree) if is_c else (True, "")
                status, detail = run_tests(tree, tests, args.timeout) if built else ("invalid", "build failed")
                with open(path, "w") as fh:
                    fh.write(pristine)
                if is_c:
                    build(tree)
            rows.append((m, status, detail, time.perf_counter() - began))
            print(f"{status:9s} {m.name:36s} {time.perf_counter() - began:6.1f} s  {detail}", flush=True)

    print(f"\n| mutation | bug | result | first failing test |\n|---|---|---|---|")
    for m, status, detail, _ in rows:
        print(f"| `{m.name}` | {m.why} | {status} | {detail} |")
    counts = {s: sum(r[1] == s for r in rows) for s in ("killed", "survived", "stale", "invalid")}
    print(f"\n{counts['killed']} killed, {counts['survived']} survived, {counts['stale']} stale, "
          f"{counts['invalid']} invalid, in {time.perf_counter() - start:.0f} s")
    return 1 if counts["survived"] or counts["stale"] or counts["invalid"] else 0


if __name__ == "__main__":
    sys.exit(main())
