package io.ringserve.worker.cuda.ops;

import io.ringserve.worker.cuda.DeviceBuffer;
import io.ringserve.worker.cuda.GpuTest;
import io.ringserve.worker.cuda.GpuTestSupport;
import io.ringserve.worker.reference.Matrix;

/** embedding.cu against the reference's row gather (Matrix.row, what ReferenceForward.embedding does): exact. */
class EmbeddingTest extends GpuTestSupport {

    @GpuTest
    void gathersRowsExactly() {
        Embedding op = new Embedding(device());
        int[][] shapes = {{1, 2048}, {7, 2048}, {33, 100}, {511, 40}, {7, 8}, {33, 33}}; // (T, D); D % 8 != 0 takes the scalar path
        int vocab = 1000;
        for (int[] shape : shapes) {
            int tokens = shape[0];
            int dim = shape[1];
            short[] tableBits = randomBf16(tokens * 31L + dim, vocab * dim, 1f);
            Matrix table = bf16Matrix(tableBits, vocab, dim);
            int[] ids = randomInts(tokens, tokens, vocab);
            ids[0] = vocab - 1;
            float[] expected = new float[tokens * dim]; // (T, D)
            for (int t = 0; t < tokens; t++) {
                table.row(ids[t], expected, t * dim);
            }
            try (DeviceBuffer dTable = upload(tableBits); DeviceBuffer dIds = upload(ids); DeviceBuffer out = poisoned(4L * tokens * dim)) {
                op.launch(device().stream(), out, dTable, dIds, tokens, dim, vocab);
                assertBitExact("embedding T=" + tokens + " D=" + dim, expected, downloadFloats(out, tokens * dim));
            }
        }
    }

    @GpuTest
    void misalignedTableTakesTheScalarPath() {
        Embedding op = new Embedding(device());
        int vocab = 50;
        int dim = 64;
        short[] tableBits = randomBf16(5, vocab * dim + 1, 1f);
        short[] shifted = java.util.Arrays.copyOfRange(tableBits, 1, tableBits.length);
        int[] ids = randomInts(6, 9, vocab);
        float[] expected = new float[9 * dim];
        for (int t = 0; t < 9; t++) {
            bf16Matrix(shifted, vocab, dim).row(ids[t], expected, t * dim);
        }
        try (DeviceBuffer dTable = upload(tableBits); DeviceBuffer dIds = upload(ids); DeviceBuffer out = poisoned(4L * 9 * dim)) {
            op.launch(device().stream(), out, dTable.slice(2, 2L * vocab * dim), dIds, 9, dim, vocab);
            assertBitExact("embedding from a 2-byte-offset table", expected, downloadFloats(out, 9 * dim));
        }
    }

    @GpuTest
    void anOutOfRangeIdGivesANanRow() {
        Embedding op = new Embedding(device());
        try (DeviceBuffer dTable = upload(randomBf16(7, 10 * 16, 1f)); DeviceBuffer dIds = upload(new int[] {3, 10, -1});
             DeviceBuffer out = poisoned(4L * 3 * 16)) {
            out.fill((byte) 0);
            op.launch(device().stream(), out, dTable, dIds, 3, 16, 10);
            float[] got = downloadFloats(out, 48);
            for (int i = 16; i < 48; i++) {
                org.junit.jupiter.api.Assertions.assertTrue(Float.isNaN(got[i]), "element " + i + " of a bad id's row: " + got[i]);
            }
            org.junit.jupiter.api.Assertions.assertFalse(Float.isNaN(got[0]));
        }
    }
}
