package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.GpuTest;
import io.ringserve.worker.cuda.GpuTestSupport;
import io.ringserve.worker.weights.Bf16;
import java.util.ArrayList;
import java.util.List;

/**
 * attention_prefill.cu against the reference attention loop: several sequences' new tokens in one step (whole
 * prompts and chunks after cached context), causal, on a shuffled paged cache; a padding row gives 0.
 */
class AttentionPrefillTest extends GpuTestSupport {

    @GpuTest
    void matchesTheReferenceCausally() {
        AttentionPrefill op = new AttentionPrefill(device());
        check(op, 16, 4, 128, 16, new int[] {1}, new int[] {1});
        check(op, 16, 4, 128, 16, new int[] {7, 40, 511}, new int[] {7, 33, 511}); // prompts and a chunk after 7 cached
        check(op, 6, 2, 40, 5, new int[] {40, 1, 9}, new int[] {40, 1, 2});
        check(op, 8, 1, 256, 8, new int[] {65}, new int[] {65});
    }

    private static void check(AttentionPrefill op, int heads, int kvHeads, int d, int blockSize, int[] lengths, int[] newTokens) {
        int n = lengths.length;
        String what = "attention_prefill H=" + heads + " Hkv=" + kvHeads + " d=" + d + " B=" + blockSize + " lengths=" + java.util.Arrays.toString(lengths);
        long seed = heads * 37L + d * 3L + blockSize + lengths[0];
        PagedKv kv = new PagedKv(seed, blockSize, kvHeads, d, lengths);
        List<int[]> rows = new ArrayList<>(); // (seq, position)
        for (int s = 0; s < n; s++) {
            for (int i = 0; i < newTokens[s]; i++) {
                rows.add(new int[] {s, lengths[s] - newTokens[s] + i});
            }
        }
        rows.add(new int[] {0, -1}); // padding row
        int tokens = rows.size();
        int[] rowSeq = new int[tokens];
        int[] positions = new int[tokens];
        for (int t = 0; t < tokens; t++) {
            rowSeq[t] = rows.get(t)[0];
            positions[t] = rows.get(t)[1];
        }
        float[] q = randomFloats(seed + 9, tokens * heads * d, 1f);
        float scale = (float) (1.0 / Math.sqrt(d));
        int group = heads / kvHeads;
        float[] expected = new float[tokens * heads * d];
        for (int t = 0; t < tokens; t++) {
            for (int h = 0; h < heads && positions[t] >= 0; h++) {
                kv.attend(rowSeq[t], q, (t * heads + h) * d, h / group, positions[t] + 1, scale, expected, (t * heads + h) * d);
            }
        }
        try (DeviceBuffer dq = upload(q); DeviceBuffer k = upload(kv.keys); DeviceBuffer v = upload(kv.values); DeviceBuffer tables = upload(kv.tables);
             DeviceBuffer dSeq = upload(rowSeq); DeviceBuffer dPos = upload(positions); DeviceBuffer out = poisoned(4L * tokens * heads * d);
             DeviceBuffer outBf16 = poisoned(2L * tokens * heads * d)) {
            op.launch(device().stream(), dq, k, v, tables, dSeq, dPos, out, false, tokens, n, heads, kvHeads, d, blockSize, kv.maxBlocks, kv.rows);
            float[] got = downloadFloats(out, tokens * heads * d);
            assertClose(what, expected, got, 1e-5, 1e-4);
            // bf16 output (the runner's o_proj input): the same values rounded
            op.launch(device().stream(), dq, k, v, tables, dSeq, dPos, outBf16, true, tokens, n, heads, kvHeads, d, blockSize, kv.maxBlocks, kv.rows);
            assertBitExact(what + " bf16 out", Bf16.round(got), downloadBf16(outBf16, tokens * heads * d));
        }
    }
}
