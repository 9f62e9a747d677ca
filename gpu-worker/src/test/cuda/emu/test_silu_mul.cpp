// CPU-emulated check of silu_mul.cu against ReferenceOps.siluMul.
#include "cuemu.h"
#include "harness.h"
#include "silu_mul.cu"

static void run(int T, int I, bool fused) {
    const int stride = fused ? 2 * I : I;
    std::vector<float> gate(T * stride), up(T * stride);
    for (auto &v : gate) v = h::normal() * 4;
    for (auto &v : up) v = h::normal();
    const float *g = gate.data();
    const float *u = fused ? gate.data() + I : up.data();
    std::vector<float> want(T * I);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < I; i++) {
            float gv = g[t * stride + i];
            want[t * I + i] = h::round_bf16((float) (gv / (1.0 + std::exp(-gv))) * u[t * stride + i]);
        }
    std::vector<uint16_t> out(T * I, 0xFFFF);
    emu::launch(silu_mul, dim3((I + 255) / 256, T), dim3(256), 0, (rs::bf16_t *) out.data(), g, u, T, I, stride);
    std::vector<float> got(T * I);
    for (int i = 0; i < T * I; i++) got[i] = h::from_bf16(out[i]);
    char name[96];
    std::snprintf(name, sizeof name, "silu_mul T=%d I=%d fused=%d", T, I, fused);
    h::check(name, got.data(), want.data(), got.size(), 1e-30f, 1.0f / 128);
}

int main() {
    run(1, 512, true);
    run(7, 300, true);
    run(3, 33, false);
    return h::finish();
}
