// CPU-emulated check of matmul.cu (tensor-core tiles; mma.sync emulated from its fragment layout)
// against ReferenceOps.matmul on the same bf16 values.
#include "cuemu.h"
#include "harness.h"
#include "matmul.cu"

static void run(int T, int N, int K, bool accumulate, int offset) {
    auto [x, w, y, want] = h::matmul_case(T, N, K, accumulate, offset);
    emu::launch(matmul_bf16, dim3((N + 63) / 64, (T + 63) / 64), dim3(128), 0, y.data(), (const rs::bf16_t *) x.data() + offset,
                (const rs::bf16_t *) w.data() + offset, T, N, K, accumulate ? 1 : 0);
    char name[96];
    std::snprintf(name, sizeof name, "matmul T=%d N=%d K=%d acc=%d offset=%d", T, N, K, accumulate, offset);
    h::check(name, y.data(), want.data(), y.size(), 1e-4f, 1e-4f);
}

int main() {
    run(64, 64, 32, false, 0);   // one tile, one K step
    run(33, 70, 96, true, 0);    // partial tiles in both directions
    run(9, 130, 40, false, 0);   // K % 32 != 0
    run(130, 17, 64, false, 0);  // three token tiles
    run(7, 9, 37, false, 0);     // K % 8 != 0: element loads
    run(20, 20, 48, true, 1);    // misaligned: element loads
    run(1, 1, 16, false, 0);
    return h::finish();
}
