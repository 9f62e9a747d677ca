// CPU-emulated check of rmsnorm.cu against ReferenceOps.add + ReferenceOps.rmsnorm.
#include "cuemu.h"
#include "harness.h"
#include "rmsnorm.cu"

static void run(int T, int D, bool residual) {
    const float eps = 1e-6f;
    std::vector<float> x(T * D), delta(T * D);
    for (auto &v : x) v = h::normal() * 3;
    for (auto &v : delta) v = h::normal();
    std::vector<uint16_t> w(D);
    for (auto &b : w) b = h::to_bf16(h::uniform(0.5f, 1.5f));
    std::vector<float> xWant = x;
    if (residual)
        for (int i = 0; i < T * D; i++) xWant[i] += delta[i];
    std::vector<float> want(T * D);
    for (int t = 0; t < T; t++) {
        double ss = 0;
        for (int i = 0; i < D; i++) ss += (double) xWant[t * D + i] * xWant[t * D + i];
        float inv = (float) (1.0 / std::sqrt(ss / D + eps));
        for (int i = 0; i < D; i++) want[t * D + i] = h::round_bf16(h::from_bf16(w[i]) * (xWant[t * D + i] * inv));
    }
    std::vector<uint16_t> out(T * D, 0xFFFF);
    emu::launch(rmsnorm, dim3(T), dim3(256), 0, (rs::bf16_t *) out.data(), x.data(), residual ? delta.data() : nullptr,
                (const rs::bf16_t *) w.data(), T, D, eps);
    std::vector<float> got(T * D);
    for (int i = 0; i < T * D; i++) got[i] = h::from_bf16(out[i]);
    char name[96];
    std::snprintf(name, sizeof name, "rmsnorm T=%d D=%d residual=%d", T, D, residual);
    // one bf16 ulp (2^-8 relative) for the rare value whose rounding flips with inv's last bits
    h::check(std::string(name) + " y", got.data(), want.data(), got.size(), 1e-6f, 1.0f / 128);
    h::check(std::string(name) + " x", x.data(), xWant.data(), x.size(), 0.f, 0.f);
}

int main() {
    run(1, 2048, false);
    run(7, 2048, true);
    run(33, 1000, true); // D not a multiple of the block
    run(3, 33, false);
    run(2, 128, true); // a head
    return h::finish();
}
