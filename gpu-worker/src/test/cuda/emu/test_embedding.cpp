// CPU-emulated check of embedding.cu against ReferenceForward.embedding (row gather, exact).
#include "cuemu.h"
#include "harness.h"
#include "embedding.cu"

static void run(int T, int V, int D, int offset) {
    // offset (in bf16 elements) misaligns the table to force the scalar path
    std::vector<uint16_t> table(V * D + offset);
    for (auto &b : table) b = h::to_bf16(h::normal());
    std::vector<int> ids(T);
    for (int t = 0; t < T; t++) ids[t] = h::randint(0, V - 1);
    if (T > 3) ids[2] = V; // out of range -> NaN row
    std::vector<float> out(T * D, 12345.f), want(T * D);
    emu::launch(embedding, dim3(T), dim3(256), 0, out.data(), (const rs::bf16_t *) table.data() + offset, ids.data(), T, D, V);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < D; i++)
            want[t * D + i] = ids[t] < V ? h::from_bf16(table[offset + ids[t] * D + i]) : NAN;
    char name[96];
    std::snprintf(name, sizeof name, "embedding T=%d V=%d D=%d offset=%d", T, V, D, offset);
    h::check(name, out.data(), want.data(), out.size(), 0.f, 0.f);
}

int main() {
    run(1, 50, 2048, 0);
    run(7, 100, 40, 0);   // vector path, D not a multiple of the block
    run(33, 64, 100, 0);  // D % 8 != 0: scalar
    run(5, 30, 64, 1);    // misaligned table: scalar
    run(9, 17, 8, 0);
    return h::finish();
}
