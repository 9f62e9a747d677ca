package io.ringserve.worker.weights;

import static io.ringserve.worker.weights.SafetensorsTestFiles.SHARD1;
import static io.ringserve.worker.weights.SafetensorsTestFiles.SHARD2;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tools.jackson.databind.JsonNode;

class SafetensorsCheckpointTest {

    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    // tiny-ring-a config: hidden 64, vocab 1664, 4 query heads + 2 kv heads of dim 16, dense
    // intermediate 160 (layer 0), 16 experts of intermediate 32, one shared expert of 32.
    private static final Pattern EXPERT = Pattern.compile("model\\.layers\\.\\d+\\.mlp\\.(experts\\.\\d+|shared_experts)\\.(\\w+)\\.weight");

    /** Shape each tensor must have according to config.json, derived independently of the headers. */
    private static long[] expectedShape(String name) {
        Matcher m = EXPERT.matcher(name);
        if (m.matches()) {
            return m.group(2).equals("down_proj") ? new long[] {64, 32} : new long[] {32, 64};
        }
        if (name.equals("lm_head.weight") || name.equals("model.word_embeddings.weight")) {
            return new long[] {1664, 64};
        }
        if (name.equals("model.norm.weight") || name.endsWith("input_layernorm.weight")
                || name.endsWith("post_attention_layernorm.weight")) {
            return new long[] {64};
        }
        if (name.endsWith("query_layernorm.weight") || name.endsWith("key_layernorm.weight")) {
            return new long[] {16};
        }
        if (name.endsWith("attention.query_key_value.weight")) {
            return new long[] {(4 + 2 + 2) * 16, 64};
        }
        if (name.endsWith("attention.dense.weight")) {
            return new long[] {64, 64};
        }
        if (name.equals("model.layers.0.mlp.down_proj.weight")) {
            return new long[] {64, 160};
        }
        if (name.startsWith("model.layers.0.mlp.") && (name.endsWith("gate_proj.weight") || name.endsWith("up_proj.weight"))) {
            return new long[] {160, 64};
        }
        if (name.endsWith("mlp.gate.weight")) {
            return new long[] {16, 64};
        }
        if (name.endsWith("mlp.gate.expert_bias")) {
            return new long[] {16};
        }
        throw new AssertionError("unexpected tensor " + name);
    }

    @Test
    void everyIndexedTensorOfTheGoldenCheckpointIsReadable() throws IOException {
        Path dir = SafetensorsTestFiles.goldenDir();
        JsonNode index = SafetensorsTestFiles.JSON.readTree(dir.resolve(SafetensorsCheckpoint.INDEX_FILE).toFile());
        Set<String> indexed = new TreeSet<>(index.get("weight_map").propertyNames());
        assertEquals(130, indexed.size());

        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir)) {
            assertEquals(indexed, ckpt.names());
            assertEquals(new ArrayList<>(indexed), new ArrayList<>(ckpt.names()), "names() is sorted");
            long sum = 0;
            for (String name : indexed) {
                assertTrue(ckpt.contains(name));
                TensorInfo info = ckpt.info(name);
                DType want = name.endsWith(".mlp.gate.expert_bias") ? DType.F32 : DType.BF16;
                assertEquals(want, info.dtype(), name);
                assertArrayEquals(expectedShape(name), info.shape(), name);
                assertEquals(index.get("weight_map").get(name).stringValue(), info.file().getFileName().toString());
                assertEquals(info.elementCount() * want.byteSize(), info.byteSize());

                MemorySegment raw = ckpt.raw(name);
                assertEquals(info.byteSize(), raw.byteSize());
                assertTrue(raw.isMapped() && raw.isReadOnly(), "raw() is a slice of the read-only mapping");

                float[] values = ckpt.readFloat(name, expectedShape(name));
                assertEquals(info.elementCount(), values.length);
                for (float v : values) {
                    assertTrue(Float.isFinite(v), name);
                }
                MemorySegment bf = ckpt.bf16(name, expectedShape(name));
                assertEquals(2 * info.elementCount(), bf.byteSize());
                for (int i = 0; i < values.length; i++) {
                    assertEquals(Bf16.fromFloat(values[i]), bf.get(I16_LE, 2L * i), name);
                }
                sum += info.byteSize();
            }
            assertEquals(sum, ckpt.totalBytes());
            // The shards hold nothing but these tensors: the data areas add up exactly.
            long dataAreas = 0;
            for (String f : List.of(SHARD1, SHARD2)) {
                dataAreas += Files.size(dir.resolve(f)) - 8 - SafetensorsTestFiles.headerLength(dir.resolve(f));
            }
            assertEquals(dataAreas, ckpt.totalBytes());
        }
    }

    @Test
    void goldenValuesMatchAnIndependentDecode() {
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(SafetensorsTestFiles.goldenDir())) {
            // Reference values decoded from the files with Python's struct module.
            float[] bias = ckpt.readFloat("model.layers.1.mlp.gate.expert_bias", 16);
            assertEquals(0.016432050615549088f, bias[0]);
            assertEquals(-0.03832614794373512f, bias[1]);
            assertEquals(-0.0015137691516429186f, bias[2]);
            assertEquals(-0.06509846448898315f, bias[3]);

            float[] norm = ckpt.readFloat("model.norm.weight", 64);
            assertArrayEquals(new float[] {1.1015625f, 0.90625f, 1.234375f, 1.0625f}, java.util.Arrays.copyOf(norm, 4));
            assertEquals((short) 16269, ckpt.raw("model.norm.weight").get(I16_LE, 0));

            float[] head = ckpt.readFloat("lm_head.weight", 1664, 64);
            assertArrayEquals(new float[] {-0.3671875f, 0.06591796875f, -0.52734375f}, java.util.Arrays.copyOf(head, 3));
            double s = 0;
            for (float v : head) {
                s += v;
            }
            assertEquals(-51.7714474350214, s, 1e-9);
        }
    }

    @Test
    void bf16IsZeroCopyForBf16AndConvertedOnceForF32() {
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(SafetensorsTestFiles.goldenDir())) {
            String w = "model.layers.2.mlp.gate.weight";
            assertEquals(ckpt.raw(w).address(), ckpt.bf16(w, 16, 64).address());
            assertTrue(ckpt.bf16(w).isMapped());

            String b = "model.layers.2.mlp.gate.expert_bias";
            MemorySegment conv = ckpt.bf16(b, 16);
            assertFalse(conv.isMapped());
            assertTrue(conv.isNative());
            assertSame(conv, ckpt.bf16(b), "conversion is cached");
            float[] f = ckpt.readFloat(b);
            for (int i = 0; i < 16; i++) {
                assertEquals(Bf16.fromFloat(f[i]), conv.get(I16_LE, 2L * i));
            }
        }
    }

    @Test
    void missingTensorAndWrongShapeAreReportedWithNames() {
        Path dir = SafetensorsTestFiles.goldenDir();
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir)) {
            assertFalse(ckpt.contains("model.embed_tokens.weight"));
            WeightsException e = assertThrows(WeightsException.class, () -> ckpt.info("model.embed_tokens.weight"));
            assertTrue(e.getMessage().contains("'model.embed_tokens.weight'"), e.getMessage());
            assertTrue(e.getMessage().contains(dir.toString()), e.getMessage());
            assertThrows(WeightsException.class, () -> ckpt.raw("nope"));
            assertThrows(WeightsException.class, () -> ckpt.bf16("nope"));

            e = assertThrows(WeightsException.class, () -> ckpt.readFloat("model.norm.weight", 32));
            assertTrue(e.getMessage().contains(SHARD2), e.getMessage());
            assertTrue(e.getMessage().contains("'model.norm.weight'"), e.getMessage());
            assertTrue(e.getMessage().contains("[32]") && e.getMessage().contains("[64]"), e.getMessage());

            e = assertThrows(WeightsException.class, () -> ckpt.bf16("lm_head.weight", 64, 1664));
            assertTrue(e.getMessage().contains(SHARD1) && e.getMessage().contains("[64, 1664]")
                    && e.getMessage().contains("[1664, 64]"), e.getMessage());
        }
    }

    @Test
    void closeUnmaps() {
        SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(SafetensorsTestFiles.goldenDir());
        MemorySegment raw = ckpt.raw("model.norm.weight");
        assertNotEquals(0, raw.get(I16_LE, 0));
        ckpt.close();
        ckpt.close();
        assertThrows(IllegalStateException.class, () -> raw.get(I16_LE, 0));
        assertThrows(WeightsException.class, () -> ckpt.raw("model.norm.weight"));
    }

    @Test
    void shardsMayBeSymlinksIntoACache(@TempDir Path tmp) throws IOException {
        // Hub caches keep the files as blobs and link them into a snapshot directory.
        Path blobs = SafetensorsTestFiles.copyGolden(Files.createDirectory(tmp.resolve("blobs")));
        Path snapshot = Files.createDirectory(tmp.resolve("snapshot"));
        for (String f : List.of(SHARD1, SHARD2, SafetensorsCheckpoint.INDEX_FILE)) {
            Files.createSymbolicLink(snapshot.resolve(f), Path.of("..", "blobs", f));
        }
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(snapshot)) {
            assertEquals(130, ckpt.names().size());
            assertEquals(snapshot.resolve(SHARD2).toAbsolutePath(), ckpt.info("model.norm.weight").file());
        }
        assertTrue(Files.exists(blobs.resolve(SHARD1)));
    }

    @Test
    void openFindsSingleFileCheckpoints(@TempDir Path tmp) throws IOException {
        var t = SafetensorsWriter.Tensor.of("w", DType.F32, new long[] {2}, new float[] {1, 2});

        Path a = Files.createDirectory(tmp.resolve("a"));
        SafetensorsWriter.write(a.resolve("model.safetensors"), Map.of(), List.of(t));
        Files.writeString(a.resolve("other.safetensors"), "ignored: model.safetensors wins");
        try (var c = SafetensorsCheckpoint.open(a)) {
            assertEquals(Set.of("w"), c.names());
        }

        Path b = Files.createDirectory(tmp.resolve("b"));
        SafetensorsWriter.write(b.resolve("consolidated.safetensors"), null, List.of(t));
        try (var c = SafetensorsCheckpoint.open(b)) {
            assertArrayEquals(new float[] {1, 2}, c.readFloat("w", 2));
        }
        try (var c = SafetensorsCheckpoint.openFile(b.resolve("consolidated.safetensors"))) {
            assertEquals(8, c.totalBytes());
            WeightsException e = assertThrows(WeightsException.class, () -> c.info("x"));
            assertTrue(e.getMessage().contains("consolidated.safetensors"), e.getMessage());
        }

        SafetensorsWriter.write(b.resolve("second.safetensors"), null, List.of(t));
        WeightsException e = assertThrows(WeightsException.class, () -> SafetensorsCheckpoint.open(b));
        assertTrue(e.getMessage().contains(b.toString()) && e.getMessage().contains("second.safetensors"), e.getMessage());

        Path empty = Files.createDirectory(tmp.resolve("empty"));
        e = assertThrows(WeightsException.class, () -> SafetensorsCheckpoint.open(empty));
        assertTrue(e.getMessage().contains(empty.toString()), e.getMessage());

        Path none = tmp.resolve("does-not-exist");
        e = assertThrows(WeightsException.class, () -> SafetensorsCheckpoint.open(none));
        assertTrue(e.getMessage().contains(none.toString()), e.getMessage());
    }

    @Test
    void pytorchOnlyCheckpointsAreRefusedWithHowToConvert(@TempDir Path tmp) throws IOException {
        Path bin = Files.createDirectory(tmp.resolve("ring-lite"));
        Files.writeString(bin.resolve("config.json"), "{}");
        Files.write(bin.resolve("pytorch_model.bin"), new byte[] {(byte) 0x80, 2, 'P', 'K'}); // never parsed
        WeightsException e = assertThrows(WeightsException.class, () -> SafetensorsCheckpoint.open(bin));
        String m = e.getMessage();
        assertTrue(m.startsWith(bin + ": only PyTorch weights (pytorch_model.bin), no safetensors"), m);
        assertTrue(m.contains("save_pretrained(sys.argv[2], safe_serialization=True)"), m);
        assertTrue(m.contains("from safetensors.torch import save_file"), m);
        assertFalse(m.contains("\n"), "one line");

        Path sharded = Files.createDirectory(tmp.resolve("sharded"));
        for (String f : List.of("pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin", "pytorch_model.bin.index.json")) {
            Files.writeString(sharded.resolve(f), "x");
        }
        e = assertThrows(WeightsException.class, () -> SafetensorsCheckpoint.open(sharded));
        assertTrue(e.getMessage().contains("(pytorch_model-00001-of-00002.bin, pytorch_model-00002-of-00002.bin, pytorch_model.bin.index.json)"),
                e.getMessage());

        // safetensors next to the .bin are used as usual
        SafetensorsWriter.write(bin.resolve("model.safetensors"), null, List.of(SafetensorsWriter.Tensor.of("w", DType.F32, new long[] {1}, new float[] {3})));
        try (var c = SafetensorsCheckpoint.open(bin)) {
            assertEquals(Set.of("w"), c.names());
        }
    }
}
