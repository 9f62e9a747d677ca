package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.GpuTest;
import io.ringserve.worker.cuda.GpuTestSupport;
import io.ringserve.worker.weights.Bf16;

/**
 * attention_decode.cu (one pass, and split-K + combine) against the reference attention loop on a shuffled
 * paged cache: awkward context lengths (1, 7, 33, 511, a block boundary ± 1), head dims and block sizes.
 */
class AttentionDecodeTest extends GpuTestSupport {

    @GpuTest
    void matchesTheReferenceOnePassAndSplit() {
        AttentionDecode op = new AttentionDecode(device());
        check(op, 16, 4, 128, 16, new int[] {1}, 64);                      // the first token
        check(op, 16, 4, 128, 16, new int[] {7, 33, 511, 15, 16, 17}, 128); // Ring-mini-2.0 shape
        check(op, 6, 2, 40, 5, new int[] {1, 2, 31, 32, 33, 70}, 13);      // nothing a multiple of anything
        check(op, 8, 1, 256, 64, new int[] {1000}, 256);                   // G = 8, d = 256, long context
        check(op, 16, 4, 128, 16, new int[] {8192, 3000, 64}, 1024);       // 8K context: 32 ranges of 256 keys
        check(op, 3, 3, 16, 4, new int[] {9, 1}, 4);                       // no GQA
    }

    private static void check(AttentionDecode op, int heads, int kvHeads, int d, int blockSize, int[] lengths, int keysPerSplit) {
        int n = lengths.length;
        String what = "attention_decode H=" + heads + " Hkv=" + kvHeads + " d=" + d + " B=" + blockSize + " N=" + n;
        long seed = heads * 131L + d * 17L + blockSize + n;
        PagedKv kv = new PagedKv(seed, blockSize, kvHeads, d, lengths);
        float[] q = randomFloats(seed + 5, n * heads * d, 1f); // (N, H·d)
        float scale = (float) (1.0 / Math.sqrt(d));
        int group = heads / kvHeads;
        float[] expected = new float[n * heads * d];
        for (int s = 0; s < n; s++) {
            for (int h = 0; h < heads; h++) {
                kv.attend(s, q, (s * heads + h) * d, h / group, lengths[s], scale, expected, (s * heads + h) * d);
            }
        }
        int splits = (kv.maxBlocks * blockSize + keysPerSplit - 1) / keysPerSplit;
        try (DeviceBuffer dq = upload(q); DeviceBuffer k = upload(kv.keys); DeviceBuffer v = upload(kv.values); DeviceBuffer tables = upload(kv.tables);
             DeviceBuffer lens = upload(lengths); DeviceBuffer out = poisoned(4L * n * heads * d);
             DeviceBuffer out2 = poisoned(4L * n * heads * d);
             DeviceBuffer ws = poisoned(AttentionDecode.workspaceBytes(n, heads, d, splits));
             DeviceBuffer counters = device().alloc(AttentionDecode.countersBytes(n, kvHeads))) {
            AttentionDecode.clearCounters(counters);
            op.launch(device().stream(), dq, k, v, tables, lens, out, false, n, heads, kvHeads, d, blockSize, kv.maxBlocks, kv.rows);
            assertClose(what, expected, downloadFloats(out, n * heads * d), 1e-5, 1e-4);
            op.launchSplit(device().stream(), dq, k, v, tables, lens, out2, false, ws, counters, n, heads, kvHeads, d, blockSize, kv.maxBlocks, kv.rows, splits,
                    keysPerSplit);
            assertClose(what + " split " + splits + "×" + keysPerSplit, expected, downloadFloats(out2, n * heads * d), 1e-5, 1e-4);
        }
        // as the runner splits: 32 ranges per sequence of max(64, ceil(context / 32) rounded up to 32) keys each
        try (DeviceBuffer dq = upload(q); DeviceBuffer k = upload(kv.keys); DeviceBuffer v = upload(kv.values); DeviceBuffer tables = upload(kv.tables);
             DeviceBuffer lens = upload(lengths); DeviceBuffer out = poisoned(4L * n * heads * d); DeviceBuffer outBf16 = poisoned(2L * n * heads * d);
             DeviceBuffer oneBf16 = poisoned(2L * n * heads * d);
             DeviceBuffer ws = poisoned(AttentionDecode.workspaceBytes(n, heads, d, 32));
             DeviceBuffer counters = device().alloc(AttentionDecode.countersBytes(n, kvHeads))) {
            AttentionDecode.clearCounters(counters); // then two launches on them: each leaves the merge counters at 0 for the next
            op.launchSplit(device().stream(), dq, k, v, tables, lens, out, false, ws, counters, n, heads, kvHeads, d, blockSize, kv.maxBlocks, kv.rows, 32, 64);
            float[] split = downloadFloats(out, n * heads * d);
            assertClose(what + " split 32, per-sequence ranges", expected, split, 1e-5, 1e-4);
            // bf16 output (the runner's o_proj input): the fp32 result rounded, for the split and the one-pass kernel
            op.launchSplit(device().stream(), dq, k, v, tables, lens, outBf16, true, ws, counters, n, heads, kvHeads, d, blockSize, kv.maxBlocks, kv.rows, 32, 64);
            assertBitExact(what + " split, bf16 out", Bf16.round(split), downloadBf16(outBf16, n * heads * d));
            op.launch(device().stream(), dq, k, v, tables, lens, oneBf16, true, n, heads, kvHeads, d, blockSize, kv.maxBlocks, kv.rows);
            assertClose(what + " bf16 out", Bf16.round(expected), downloadBf16(oneBf16, n * heads * d), 4e-3, 1e-2);
            // fewer sequences on the same workspace and counters, then all again (as decode graphs of several buckets share
            // them): the first sequence alone gives its bits of the batched run, and the batch its bits again
            if (n > 1) {
                try (DeviceBuffer first = poisoned(4L * heads * d); DeviceBuffer again = poisoned(4L * n * heads * d)) {
                    op.launchSplit(device().stream(), dq, k, v, tables, lens, first, false, ws, counters, 1, heads, kvHeads, d, blockSize, kv.maxBlocks,
                            kv.rows, 32, 64);
                    assertBitExact(what + " split, the first sequence alone", java.util.Arrays.copyOf(split, heads * d), downloadFloats(first, heads * d));
                    op.launchSplit(device().stream(), dq, k, v, tables, lens, again, false, ws, counters, n, heads, kvHeads, d, blockSize, kv.maxBlocks,
                            kv.rows, 32, 64);
                    assertBitExact(what + " split, the batch again", split, downloadFloats(again, n * heads * d));
                }
            }
        }
    }
}
