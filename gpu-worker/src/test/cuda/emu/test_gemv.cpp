// CPU-emulated check of gemv.cu (T <= 8) against ReferenceOps.matmul on the same bf16 values, and of
// its SwiGLU variant against gemv_bf16 followed by silu_mul (bit for bit).
#include "cuemu.h"
#include "harness.h"
#include "gemv.cu"
#include "silu_mul.cu"

typedef void (*GemvKernel)(float *, const rs::bf16_t *, const rs::bf16_t *, int, int, int);
static const GemvKernel KERNELS[] = {gemv_bf16_1, gemv_bf16_2, gemv_bf16_3, gemv_bf16_4,
                                     gemv_bf16_5, gemv_bf16_6, gemv_bf16_7, gemv_bf16_8};

typedef void (*SwigluKernel)(rs::bf16_t *, const rs::bf16_t *, const rs::bf16_t *, int, int);
static const SwigluKernel SWIGLU[] = {gemv_swiglu_bf16_1, gemv_swiglu_bf16_2, gemv_swiglu_bf16_3, gemv_swiglu_bf16_4,
                                      gemv_swiglu_bf16_5, gemv_swiglu_bf16_6, gemv_swiglu_bf16_7, gemv_swiglu_bf16_8};

/** h = silu(x·W_gateᵀ) ⊙ (x·W_upᵀ) in one kernel equals gemv over the stacked [gate; up] weight, then silu_mul. */
static void swiglu(int T, int I, int K, int offset) {
    std::vector<uint16_t> x(T * K + offset), w(2 * I * K + offset);
    for (auto &b : x) b = h::to_bf16(h::normal());
    for (auto &b : w) b = h::to_bf16(h::normal() * 0.05f);
    const int kc = K < 2048 ? K : 2048;
    std::vector<float> gu(T * 2 * I, NAN);
    emu::launch(KERNELS[T - 1], dim3((2 * I + 7) / 8), dim3(256), (size_t) T * kc * 2, gu.data(),
                (const rs::bf16_t *) x.data() + offset, (const rs::bf16_t *) w.data() + offset, 2 * I, K, 0);
    std::vector<uint16_t> want(T * I, 0xffff), got(T * I, 0xffff);
    emu::launch(silu_mul, dim3((I + 255) / 256, T), dim3(256), 0, (rs::bf16_t *) want.data(), (const float *) gu.data(),
                (const float *) gu.data() + I, T, I, 2 * I);
    emu::launch(SWIGLU[T - 1], dim3((I + 7) / 8), dim3(256), (size_t) T * kc * 2, (rs::bf16_t *) got.data(),
                (const rs::bf16_t *) x.data() + offset, (const rs::bf16_t *) w.data() + offset, I, K);
    char name[96];
    std::snprintf(name, sizeof name, "gemv_swiglu T=%d I=%d K=%d offset=%d = gemv + silu_mul bit for bit", T, I, K, offset);
    const bool same = got == want;
    std::printf("%s %s\n", same ? "ok  " : "FAIL", name);
    if (!same) h::failures++;
}

static void run(int T, int N, int K, bool accumulate, int offset) {
    auto [x, w, y, want] = h::matmul_case(T, N, K, accumulate, offset);
    const int kc = K < 2048 ? K : 2048;
    emu::launch(KERNELS[T - 1], dim3((N + 7) / 8), dim3(256), (size_t) T * kc * 2, y.data(),
                (const rs::bf16_t *) x.data() + offset, (const rs::bf16_t *) w.data() + offset, N, K, accumulate ? 1 : 0);
    char name[96];
    std::snprintf(name, sizeof name, "gemv T=%d N=%d K=%d acc=%d offset=%d", T, N, K, accumulate, offset);
    h::check(name, y.data(), want.data(), y.size(), 1e-4f, 1e-4f);
}

int main() {
    run(1, 33, 2048, false, 0);
    run(2, 9, 1000, true, 0);
    run(7, 17, 37, false, 0);    // K % 8 != 0: scalar path
    run(8, 8, 5120, false, 0);   // three K chunks
    run(3, 5, 4104, true, 0);    // last chunk of 8
    run(5, 12, 256, false, 1);   // misaligned: scalar path
    run(4, 1, 64, false, 0);
    run(6, 3, 8, false, 0);
    swiglu(1, 64, 2048, 0);    // the shared expert's shape, scaled down in I
    swiglu(3, 13, 37, 0);      // scalar path
    swiglu(8, 9, 2056, 0);     // two K chunks
    swiglu(2, 5, 64, 1);       // misaligned
    return h::finish();
}
