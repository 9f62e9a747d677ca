// matmul.cu — y = x · Wᵀ for many tokens (prefill, batches above gemv's 8): tensor cores through
// mma.sync.m16n8k16 (bf16 inputs, fp32 accumulators), W bf16 row-major [N, K] as the checkpoint
// stores it, x bf16, y fp32. Mirrors ReferenceOps.matmul; gemv.cu is the T <= 8 path.
//
// Legend: T = tokens, N = output features (rows of W), K = input features.
//
// Tiling: a block computes a 64 (tokens) × 64 (outputs) tile of y, marching over K in steps of 32.
// Both operands are K-contiguous in memory (x rows, W rows), which is exactly the "row.col" layout
// mma wants: A = x tile (row-major), B = Wᵀ tile (column-major = W rows). Each step the block stages
// Xs[64][32] and Ws[64][32] in shared memory (rows padded to 40 bf16 so the fragment reads below
// hit 32 distinct banks), then each of the 4 warps (2 × 2) computes a 32 × 32 sub-tile as
// 2 (m16) × 4 (n8) mma tiles over two k16 slices.
//
// Fragment layouts: mma.cuh. Every fragment register is one aligned 32-bit shared-memory read.
//
// This is the plain version: tiles are loaded through registers with a barrier per K step, no
// cp.async pipeline, no ldmatrix, no wgmma. It is correct for any shape (tiles at the edges are
// zero-filled) and uses the tensor cores, but leaves speed on the table for long prefills.
//
// Launch contract (kernel matmul_bf16):
//   grid  (ceil(N / 64), ceil(T / 64), 1)
//   block (128, 1, 1)     4 warps
//   dynamic shared memory: 0 (static 2 · 64 · 40 · 2 B = 10 KiB)
//   16-byte tile loads when K % 8 == 0 and x, W are 16-byte aligned; else element loads (any K)
//
// Arguments:
//   y        float*        [T, N]  output (or accumulated into when accumulate != 0)
//   x        const bf16*   [T, K]
//   w        const bf16*   [N, K]
//   tokens, n, k   ints as named
//   accumulate int         0: y = x·Wᵀ; 1: y += x·Wᵀ
#include "mma.cuh"
#include "vec.cuh"

namespace {

constexpr int BM = 64;        // tokens per block tile
constexpr int BN = 64;        // outputs per block tile
constexpr int BK = 32;        // K per step
constexpr int LDS = BK + 8;   // shared row stride in bf16: 80 bytes, 16-byte aligned, conflict-free fragments
constexpr int THREADS = 128;  // 4 warps as 2 (tokens) × 2 (outputs), 32 × 32 each

/**
 * Stages rows [row0, row0 + 64) × columns [k0, k0 + 32) of a row-major bf16 [rows, k] matrix into
 * tile[64][LDS], zero outside the matrix.
 */
__device__ __forceinline__ void load_tile(rs::bf16_t (*tile)[LDS], const rs::bf16_t *__restrict__ m, int rows, int k, int row0,
                                          int k0, bool vec) {
    if (vec) {
        // 64 rows × 4 vectors of 8: two 16-byte loads per thread
#pragma unroll
        for (int i = 0; i < (BM * BK / 8) / THREADS; i++) {
            const int c = threadIdx.x + i * THREADS;
            const int r = c / (BK / 8);
            const int col = (c % (BK / 8)) * 8;
            rs::vec16 v = {0u, 0u, 0u, 0u};
            if (row0 + r < rows && k0 + col < k) { // K % 8 == 0: a vector is wholly inside or outside
                v = rs::load16(m + (size_t) (row0 + r) * k + k0 + col);
            }
            rs::store16(&tile[r][col], v);
        }
    } else {
        for (int c = threadIdx.x; c < BM * BK; c += THREADS) {
            const int r = c / BK;
            const int col = c % BK;
            tile[r][col] = (row0 + r < rows && k0 + col < k) ? m[(size_t) (row0 + r) * k + k0 + col] : (rs::bf16_t) 0;
        }
    }
}

} // namespace

extern "C" __global__ void __launch_bounds__(THREADS)
matmul_bf16(float *__restrict__ y, const rs::bf16_t *__restrict__ x, const rs::bf16_t *__restrict__ w, int tokens, int n, int k,
            int accumulate) {
    __align__(16) __shared__ rs::bf16_t xs[BM][LDS]; // (64 tokens, 32 k) + padding
    __align__(16) __shared__ rs::bf16_t ws[BN][LDS]; // (64 outputs, 32 k) + padding

    const int warp = threadIdx.x / rs::WARP;
    const int wm = (warp / 2) * 32; // warp's first token row within the tile
    const int wn = (warp % 2) * 32; // warp's first output column within the tile
    const int m0 = blockIdx.y * BM;
    const int n0 = blockIdx.x * BN;
    const bool vec = (k & 7) == 0 && rs::aligned16(x) && rs::aligned16(w);

    float acc[2][4][4]; // (m16 tile, n8 tile, fragment)
    rs::zero_tile(acc);

    for (int k0 = 0; k0 < k; k0 += BK) {
        load_tile(xs, x, tokens, k, m0, k0, vec);
        load_tile(ws, w, n, k, n0, k0, vec);
        __syncthreads();
        rs::warp_tile_step<LDS, BK>(acc, xs, ws, wm, wn);
        __syncthreads(); // before the next step overwrites the tiles
    }

    // epilogue: each lane owns (row, col) pairs of its fragments
    rs::for_each_fragment(acc, wm, wn, [&](int r, int c, float v) {
        const int row = m0 + r;
        const int col = n0 + c;
        if (row < tokens && col < n) {
            float *dst = y + (size_t) row * n + col;
            *dst = accumulate ? *dst + v : v;
        }
    });
}
