// CPU-emulated check of moe_experts.cu (group plan, grouped routed experts, combine) against
// ReferenceForward.sparseMoe()'s loops.
#include "cuemu.h"
#include "harness.h"
#include "moe_experts.cu"

#include <set>

/** One expert's SwiGLU in double; round_h: the activations rounded to bf16 (the kernels' down input). */
static std::vector<float> ref_expert(const std::vector<uint16_t> &gu, const std::vector<uint16_t> &dn, int e, const float *x, int D, int I,
                                     bool round_h) {
    std::vector<float> hbuf(I), y(D);
    for (int i = 0; i < I; i++) {
        double g = 0, u = 0;
        for (int c = 0; c < D; c++) {
            g += (double) h::from_bf16(gu[((size_t) e * 2 * I + i) * D + c]) * x[c];
            u += (double) h::from_bf16(gu[((size_t) e * 2 * I + I + i) * D + c]) * x[c];
        }
        float gf = (float) g;
        hbuf[i] = (float) (gf / (1.0 + std::exp(-gf))) * (float) u;
        if (round_h) hbuf[i] = h::round_bf16(hbuf[i]);
    }
    for (int j = 0; j < D; j++) {
        double a = 0;
        for (int i = 0; i < I; i++) a += (double) h::from_bf16(dn[((size_t) e * D + j) * I + i]) * hbuf[i];
        y[j] = (float) a;
    }
    return y;
}

/** rmsnorm.cu's kernel body on every row: what moe_combine_norm's fused norm must reproduce bit for bit. */
static void norm_rows(rs::bf16_t *out, float *x, const rs::bf16_t *w, int dim, float eps) {
    __shared__ float scratch[THREADS / rs::WARP];
    rs_norm::rmsnorm_row(out + (size_t) blockIdx.x * dim, x + (size_t) blockIdx.x * dim, nullptr, w, dim, eps, scratch);
}

/** moe_combine_norm = moe_combine, then the rmsnorm of the rows it wrote, both bit for bit. */
static void check_combine_norm(int T, int K, int E, int D, const std::vector<float> &y, const std::vector<float> &w, const std::vector<int> &ids,
                               const std::vector<float> &shared, const std::vector<float> &res, const std::vector<float> &combined) {
    std::vector<uint16_t> nw(D);
    for (auto &v : nw) v = h::to_bf16(h::uniform(0.5f, 1.5f));
    std::vector<float> out(T * D, NAN), x(combined);
    std::vector<uint16_t> got(T * D, 0xffff), want(T * D, 0xffff);
    emu::launch(moe_combine_norm, dim3(1, T), dim3(256), 0, (const float *) y.data(), (const float *) w.data(), (const int *) ids.data(),
                (const float *) shared.data(), (const float *) res.data(), out.data(), (rs::bf16_t *) got.data(), (const rs::bf16_t *) nw.data(),
                T, K, D, E, 1e-6f);
    emu::launch(norm_rows, dim3(T), dim3(256), 0, (rs::bf16_t *) want.data(), x.data(), (const rs::bf16_t *) nw.data(), D, 1e-6f);
    const bool ok = std::memcmp(out.data(), combined.data(), out.size() * sizeof(float)) == 0 && got == want;
    std::printf("%s moe_combine_norm T=%d K=%d D=%d = moe_combine + rmsnorm bit for bit\n", ok ? "ok  " : "FAIL", T, K, D);
    if (!ok) h::failures++;
}

/** The four kernels as the runner launches them: out (T, D); plan receives the group plan. */
static std::vector<float> moe(int T, int K, int E, int D, int I, const std::vector<uint16_t> &xb, const std::vector<uint16_t> &gu,
                              const std::vector<uint16_t> &dn, const std::vector<int> &ids, const std::vector<float> &w,
                              const std::vector<float> &shared, const std::vector<float> &res, std::vector<int> &plan, bool mma) {
    const int TK = T * K;
    plan.assign(3 + 3 * E + TK, 0x7fffffff);
    std::vector<float> hb((size_t) TK * I, NAN), y((size_t) TK * D, NAN), out(T * D, NAN);
    const int groups = std::min(E, TK);
    emu::launch(moe_group, dim3(1), dim3(256), 0, (const int *) ids.data(), plan.data(), T, K, E);
    if (mma) {
        const int tiles = groups + (TK + 63) / 64;
        emu::launch(moe_gate_up_silu_mma, dim3((I + 31) / 32, tiles), dim3(128), 0, (const rs::bf16_t *) xb.data(),
                    (const rs::bf16_t *) gu.data(), (const int *) plan.data(), hb.data(), T, K, D, I, E);
        emu::launch(moe_down_mma, dim3((D + 63) / 64, tiles), dim3(128), 0, (const float *) hb.data(), (const rs::bf16_t *) dn.data(),
                    (const int *) plan.data(), y.data(), T, K, D, I, E);
    } else {
        emu::launch(moe_gate_up_silu, dim3((I + 7) / 8, groups), dim3(256), SLOTS * std::min(D, X_CHUNK) * 2,
                    (const rs::bf16_t *) xb.data(), (const rs::bf16_t *) gu.data(), (const int *) plan.data(), hb.data(), T, K, D, I, E);
        emu::launch(moe_down, dim3((D + 31) / 32, groups), dim3(256), SLOTS * std::min(I, H_CHUNK) * 4, (const float *) hb.data(),
                    (const rs::bf16_t *) dn.data(), (const int *) plan.data(), y.data(), T, K, D, I, E);
    }
    emu::launch(moe_combine, dim3((D + 255) / 256, T), dim3(256), 0, (const float *) y.data(), (const float *) w.data(),
                (const int *) ids.data(), (const float *) shared.data(), (const float *) res.data(), out.data(), T, K, D, E);
    check_combine_norm(T, K, E, D, y, w, ids, shared, res, out);
    return out;
}

static void run(int T, int K, int E, int D, int I, bool invalid = false, bool mma = false) {
    std::vector<float> x(T * D), res(T * D), shared(T * D), w(T * K);
    for (auto &v : x) v = h::round_bf16(h::normal()); // the kernel reads bf16 x
    for (auto &v : res) v = h::normal();
    for (auto &v : shared) v = h::normal();
    for (auto &v : w) v = h::uniform(0.1f, 1.f);
    std::vector<uint16_t> xb(T * D), gu((size_t) E * 2 * I * D), dn((size_t) E * D * I);
    for (int i = 0; i < T * D; i++) xb[i] = h::to_bf16(x[i]);
    for (auto *v : {&gu, &dn}) for (auto &b : *v) b = h::to_bf16(h::normal() * 0.1f);
    std::vector<int> ids(T * K);
    for (int t = 0; t < T; t++) {
        std::vector<int> all(E);
        for (int e = 0; e < E; e++) all[e] = e;
        std::shuffle(all.begin(), all.end(), h::rng);
        for (int k = 0; k < K; k++) ids[t * K + k] = all[k];
    }
    if (invalid) {
        ids[0] = -1;
        ids[T * K - 1] = E;
    }
    char name[128];
    std::snprintf(name, sizeof name, "moe%s T=%d K=%d E=%d D=%d I=%d%s", mma ? " tensor cores" : "", T, K, E, D, I, invalid ? " invalid ids" : "");
    std::vector<int> plan;
    std::vector<float> out = moe(T, K, E, D, I, xb, gu, dn, ids, w, shared, res, plan, mma);
    h::check_plan(name, plan, ids, E);
    if (T > 1 && !mma) { // the last token alone gives the same bits as in the batch (its groups and passes differ)
        const int t = T - 1;
        auto row = [&](const auto &v, int n) { return std::vector<std::decay_t<decltype(v[0])>>(v.begin() + t * n, v.begin() + (t + 1) * n); };
        std::vector<int> solo_plan;
        std::vector<float> solo = moe(1, K, E, D, I, row(xb, D), gu, dn, row(ids, K), row(w, K), row(shared, D), row(res, D), solo_plan, false);
        const bool same = std::memcmp(solo.data(), out.data() + (size_t) t * D, 4 * (size_t) D) == 0;
        std::printf("%s %s solo = batched bit for bit\n", same ? "ok  " : "FAIL", name);
        if (!same) h::failures++;
    }
    std::vector<float> want(T * D);
    for (int t = 0; t < T; t++) {
        std::vector<float> routed(D, 0.f);
        for (int k = 0; k < K; k++) {
            const int e = ids[t * K + k];
            if (e < 0 || e >= E) continue;
            std::vector<float> ye = ref_expert(gu, dn, e, &x[t * D], D, I, true); // both paths round h to bf16
            for (int j = 0; j < D; j++) routed[j] += w[t * K + k] * ye[j];
        }
        for (int j = 0; j < D; j++) want[t * D + j] = res[t * D + j] + (shared[t * D + j] + routed[j]);
    }
    h::check(name, out.data(), want.data(), out.size(), 1e-4f, 1e-4f);
}

int main() {
    run(1, 8, 16, 256, 64);          // decode, one slot per group
    run(7, 6, 9, 77, 45);            // nothing a multiple of the block: scalar paths
    run(3, 1, 1, 40, 8);             // one expert
    run(40, 2, 3, 64, 24);           // groups of ~27 slots: several passes per row
    run(2, 2, 4, 2056, 16);          // D over one staged chunk of x
    run(2, 2, 3, 24, 1032);          // I over one staged chunk of h
    run(5, 4, 300, 48, 16, true);    // more experts than threads; ids outside [0, E) add nothing
    // the tensor-core path (prefill-sized groups): against the reference with h rounded to bf16
    run(40, 2, 3, 64, 24, false, true);        // one 64-slot tile per group, I below one tile
    run(70, 3, 3, 72, 40, true, true);         // two tiles per group, D and I not multiples of the tiles
    run(9, 3, 5, 77, 45, false, true);         // scalar loads (D % 8 != 0)
    return h::finish();
}
