// CPU-emulated check of moe_experts.cu (routed experts + shared expert + combine) against
// ReferenceForward.sparseMoe()'s loops.
#include "cuemu.h"
#include "harness.h"
#include "moe_experts.cu"

static std::vector<float> ref_mlp(const std::vector<uint16_t> &gu, const std::vector<uint16_t> &dn, int e, const float *x, int D, int I) {
    std::vector<float> hbuf(I), y(D);
    for (int i = 0; i < I; i++) {
        double g = 0, u = 0;
        for (int c = 0; c < D; c++) {
            g += (double) h::from_bf16(gu[((size_t) e * 2 * I + i) * D + c]) * x[c];
            u += (double) h::from_bf16(gu[((size_t) e * 2 * I + I + i) * D + c]) * x[c];
        }
        float gf = (float) g;
        hbuf[i] = (float) (gf / (1.0 + std::exp(-gf))) * (float) u;
    }
    for (int j = 0; j < D; j++) {
        double a = 0;
        for (int i = 0; i < I; i++) a += (double) h::from_bf16(dn[((size_t) e * D + j) * I + i]) * hbuf[i];
        y[j] = (float) a;
    }
    return y;
}

static void run(int T, int K, int E, int D, int I, int Is) {
    std::vector<float> x(T * D), res(T * D), w(T * K);
    for (auto &v : x) v = h::normal();
    for (auto &v : res) v = h::normal();
    for (auto &v : w) v = h::uniform(0.1f, 1.f);
    std::vector<uint16_t> gu((size_t) E * 2 * I * D), dn((size_t) E * D * I), sgu((size_t) 2 * Is * D), sdn((size_t) D * Is);
    for (auto *v : {&gu, &dn, &sgu, &sdn}) for (auto &b : *v) b = h::to_bf16(h::normal() * 0.1f);
    std::vector<int> ids(T * K);
    for (int t = 0; t < T; t++) {
        std::vector<int> all(E);
        for (int e = 0; e < E; e++) all[e] = e;
        std::shuffle(all.begin(), all.end(), h::rng);
        for (int k = 0; k < K; k++) ids[t * K + k] = all[k];
    }
    std::vector<float> hb((size_t) T * K * I, NAN), y((size_t) T * K * D, NAN), sh((size_t) T * Is, NAN), sy((size_t) T * D, NAN), out(T * D, NAN);
    const int TK = T * K;
    emu::launch(moe_gate_up_silu, dim3((I + 7) / 8, TK), dim3(256), 0, (const float *) x.data(), (const rs::bf16_t *) gu.data(),
                (const int *) ids.data(), hb.data(), T, K, D, I, E);
    emu::launch(moe_down, dim3((D + 7) / 8, TK), dim3(256), 0, (const float *) hb.data(), (const rs::bf16_t *) dn.data(),
                (const int *) ids.data(), y.data(), T, K, D, I, E);
    emu::launch(moe_gate_up_silu, dim3((Is + 7) / 8, T), dim3(256), 0, (const float *) x.data(), (const rs::bf16_t *) sgu.data(),
                (const int *) nullptr, sh.data(), T, 1, D, Is, 1);
    emu::launch(moe_down, dim3((D + 7) / 8, T), dim3(256), 0, (const float *) sh.data(), (const rs::bf16_t *) sdn.data(),
                (const int *) nullptr, sy.data(), T, 1, D, Is, 1);
    emu::launch(moe_combine, dim3((D + 255) / 256, T), dim3(256), 0, (const float *) y.data(), (const float *) w.data(),
                (const float *) sy.data(), (const float *) res.data(), out.data(), T, K, D);
    std::vector<float> want(T * D);
    for (int t = 0; t < T; t++) {
        std::vector<float> shared = ref_mlp(sgu, sdn, 0, &x[t * D], D, Is);
        std::vector<float> routed(D, 0.f);
        for (int k = 0; k < K; k++) {
            std::vector<float> ye = ref_mlp(gu, dn, ids[t * K + k], &x[t * D], D, I);
            for (int j = 0; j < D; j++) routed[j] += w[t * K + k] * ye[j];
        }
        for (int j = 0; j < D; j++) want[t * D + j] = res[t * D + j] + (shared[j] + routed[j]);
    }
    char name[128];
    std::snprintf(name, sizeof name, "moe T=%d K=%d E=%d D=%d I=%d Is=%d", T, K, E, D, I, Is);
    h::check(name, out.data(), want.data(), out.size(), 1e-4f, 1e-4f);
}

int main() {
    run(1, 8, 16, 256, 64, 64);
    run(7, 6, 9, 77, 45, 90);  // nothing a multiple of the block
    run(3, 1, 1, 40, 8, 13);
    return h::finish();
}
