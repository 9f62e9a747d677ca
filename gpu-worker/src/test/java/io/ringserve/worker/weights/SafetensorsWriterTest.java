package io.ringserve.worker.weights;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tools.jackson.databind.JsonNode;

class SafetensorsWriterTest {

    private static SafetensorsWriter.Tensor random(String name, DType dtype, Random rnd, long... shape) {
        long n = dtype.byteSize();
        for (long d : shape) {
            n *= d;
        }
        // Arbitrary bit patterns, NaN payloads and subnormals included, must survive unchanged.
        byte[] bytes = new byte[(int) n];
        rnd.nextBytes(bytes);
        return new SafetensorsWriter.Tensor(name, dtype, shape, MemorySegment.ofArray(bytes));
    }

    @Test
    void roundTripIsBitExact(@TempDir Path tmp) throws IOException {
        Random rnd = new Random(42);
        List<SafetensorsWriter.Tensor> tensors = List.of(
                random("z.bf16", DType.BF16, rnd, 3, 5),
                random("a.f16", DType.F16, rnd, 7),
                random("m.f32", DType.F32, rnd, 2, 2, 3),
                random("scalar", DType.F32, rnd),
                random("empty", DType.BF16, rnd, 0, 4),
                random("odd", DType.BF16, rnd, 1, 3));
        Path file = tmp.resolve("t.safetensors");
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", "pt");
        meta.put("note", "ünïcode");
        SafetensorsWriter.write(file, meta, tensors);

        long n = SafetensorsTestFiles.headerLength(file);
        assertEquals(0, n % 8, "header padded to a multiple of 8");
        byte[] all = Files.readAllBytes(file);
        String header = new String(all, 8, (int) n, StandardCharsets.UTF_8);
        assertTrue(header.startsWith("{") && header.stripTrailing().endsWith("}"));
        JsonNode json = SafetensorsTestFiles.JSON.readTree(header);
        List<String> keys = new ArrayList<>(json.propertyNames());
        assertEquals(List.of("__metadata__", "z.bf16", "a.f16", "m.f32", "scalar", "empty", "odd"), keys,
                "insertion order");
        assertEquals(8 + n + 30 + 14 + 48 + 4 + 0 + 6, all.length);

        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.openFile(file)) {
            assertEquals(new TreeSet<>(keys.subList(1, keys.size())), ckpt.names());
            for (SafetensorsWriter.Tensor t : tensors) {
                TensorInfo info = ckpt.info(t.name());
                assertEquals(t.dtype(), info.dtype());
                assertArrayEquals(t.shape(), info.shape());
                assertEquals(-1, ckpt.raw(t.name()).mismatch(t.data()), t.name());
            }
            assertEquals(1, ckpt.info("scalar").elementCount());
            assertEquals(0, ckpt.readFloat("empty", 0, 4).length);
            assertEquals(102, ckpt.totalBytes());
        }
    }

    @Test
    void writesFromAnyKindOfSegment(@TempDir Path tmp) {
        float[] values = {1.5f, -2.25f, Float.NaN, Float.NEGATIVE_INFINITY, 1e-40f, 3.0e38f};
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment offHeap = arena.allocate(24);
            MemorySegment.copy(MemorySegment.ofArray(values), 0, offHeap, 0, 24);
            // ofArray(float[]) has no ByteBuffer view; the writer must stage it. Native order is little-endian here.
            List<SafetensorsWriter.Tensor> tensors = List.of(
                    new SafetensorsWriter.Tensor("heap", DType.F32, new long[] {6}, MemorySegment.ofArray(values)),
                    new SafetensorsWriter.Tensor("native", DType.F32, new long[] {2, 3}, offHeap),
                    SafetensorsWriter.Tensor.of("bf", DType.BF16, new long[] {6}, values),
                    SafetensorsWriter.Tensor.of("half", DType.F16, new long[] {3, 2}, values));
            Path file = tmp.resolve("x.safetensors");
            SafetensorsWriter.write(file, Map.of(), tensors);
            try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.openFile(file)) {
                assertArrayEquals(values, ckpt.readFloat("heap", 6));
                assertArrayEquals(values, ckpt.readFloat("native", 2, 3));
                float[] bf = ckpt.readFloat("bf");
                for (int i = 0; i < values.length; i++) {
                    assertEquals(Bf16.toFloat(Bf16.fromFloat(values[i])), bf[i]);
                    assertEquals(Float.float16ToFloat(Float.floatToFloat16(values[i])), ckpt.readFloat("half")[i]);
                }
            }
        }
        assertEquals(Set.of("x.safetensors"), Set.of(tmp.toFile().list()), "no temporary file left behind");
    }

    @Test
    void rejectsInconsistentTensors(@TempDir Path tmp) {
        MemorySegment six = MemorySegment.ofArray(new byte[6]);
        assertThrows(IllegalArgumentException.class,
                () -> new SafetensorsWriter.Tensor("w", DType.F32, new long[] {2}, six));
        assertThrows(IllegalArgumentException.class,
                () -> new SafetensorsWriter.Tensor("w", DType.BF16, new long[] {-1, -3}, six));
        assertThrows(IllegalArgumentException.class,
                () -> new SafetensorsWriter.Tensor("__metadata__", DType.BF16, new long[] {3}, six));
        var t = new SafetensorsWriter.Tensor("w", DType.BF16, new long[] {3}, six);
        assertThrows(IllegalArgumentException.class,
                () -> SafetensorsWriter.write(tmp.resolve("d.safetensors"), null, List.of(t, t)));
        assertThrows(IllegalArgumentException.class, () -> SafetensorsWriter.writeSharded(tmp, List.of(t), 0));
    }

    @Test
    void shardedCheckpointOpensBack(@TempDir Path tmp) throws IOException {
        Random rnd = new Random(7);
        List<SafetensorsWriter.Tensor> tensors = new ArrayList<>();
        for (int i = 0; i < 9; i++) {
            tensors.add(random("layers." + i + ".w", i % 3 == 0 ? DType.F32 : DType.BF16, rnd, 10, 25));
        }
        tensors.add(random("big", DType.F32, rnd, 100, 10)); // 4000 bytes: larger than a shard, alone
        tensors.add(random("tail", DType.F16, rnd, 5));
        Path dir = tmp.resolve("out");
        SafetensorsWriter.writeSharded(dir, tensors, 1500);

        JsonNode index = SafetensorsTestFiles.JSON.readTree(dir.resolve(SafetensorsCheckpoint.INDEX_FILE).toFile());
        long total = tensors.stream().mapToLong(t -> t.data().byteSize()).sum();
        assertEquals(total, index.get("metadata").get("total_size").longValue());
        Set<String> files = new TreeSet<>();
        index.get("weight_map").properties().forEach(e -> files.add(e.getValue().stringValue()));
        int shards = files.size();
        assertTrue(shards >= 4, "several shards: " + files);
        for (int i = 1; i <= shards; i++) {
            assertTrue(files.contains(String.format("model-%05d-of-%05d.safetensors", i, shards)), files.toString());
        }
        assertEquals(shards + 1, SafetensorsTestFiles.countFiles(dir));

        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir)) {
            assertEquals(tensors.size(), ckpt.names().size());
            assertEquals(total, ckpt.totalBytes());
            for (SafetensorsWriter.Tensor t : tensors) {
                assertEquals(-1, ckpt.raw(t.name()).mismatch(t.data()), t.name());
                assertArrayEquals(t.shape(), ckpt.info(t.name()).shape());
                long shardData = Files.size(ckpt.info(t.name()).file());
                assertTrue(t.name().equals("big") || shardData < 1500 + 1024, "shard respects the budget");
            }
            assertEquals(ckpt.info("big").file().getFileName().toString(),
                    index.get("weight_map").get("big").stringValue());
            assertTrue(ckpt.info("big").file().getFileName().toString()
                    .compareTo(ckpt.info("layers.8.w").file().getFileName().toString()) > 0, "order kept");
        }
    }

    @Test
    void convertedBf16FromF32IsRoundedToNearestEven(@TempDir Path tmp) {
        float[] f = {
            Float.intBitsToFloat(0x3F808000), // tie, even below: 0x3F80
            Float.intBitsToFloat(0x3F818000), // tie, odd below: 0x3F82
            Float.intBitsToFloat(0x3F808001), // just above the tie: 0x3F81
            Float.intBitsToFloat(0x7F800001), // NaN with a low payload only
            Float.MAX_VALUE,                  // rounds to infinity
            -0.0f,
        };
        short[] want = {0x3F80, 0x3F82, 0x3F81, 0, 0x7F80, (short) 0x8000};
        Path file = tmp.resolve("f.safetensors");
        SafetensorsWriter.write(file, null, List.of(SafetensorsWriter.Tensor.of("f", DType.F32, new long[] {6}, f)));
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.openFile(file)) {
            MemorySegment bf = ckpt.bf16("f", 6);
            for (int i = 0; i < f.length; i++) {
                short got = bf.get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), 2L * i);
                if (i == 3) {
                    assertTrue(Float.isNaN(Bf16.toFloat(got)), "NaN stays NaN");
                } else {
                    assertEquals(want[i], got, "element " + i);
                }
            }
        }
    }
}
