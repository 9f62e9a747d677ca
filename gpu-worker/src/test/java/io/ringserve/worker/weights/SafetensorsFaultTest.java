package io.ringserve.worker.weights;

import static io.ringserve.worker.weights.SafetensorsTestFiles.SHARD1;
import static io.ringserve.worker.weights.SafetensorsTestFiles.SHARD2;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/** Damaged checkpoints must fail at open with a message naming the file and tensor. */
class SafetensorsFaultTest {

    @TempDir
    Path tmp;

    private static WeightsException assertFault(Executable open, String... needles) {
        WeightsException e = assertThrows(WeightsException.class, open);
        for (String n : needles) {
            assertTrue(e.getMessage().contains(n), "message lacks '" + n + "': " + e.getMessage());
        }
        return e;
    }

    private Path golden() throws IOException {
        return SafetensorsTestFiles.copyGolden(Files.createDirectory(tmp.resolve("ckpt")));
    }

    /** A small valid file with tensors a [0,8) and b [8,16) (both F32 [2]). */
    private Path small() {
        Path f = tmp.resolve("small.safetensors");
        SafetensorsWriter.write(f, null, List.of(
                SafetensorsWriter.Tensor.of("a", DType.F32, new long[] {2}, new float[] {1, 2}),
                SafetensorsWriter.Tensor.of("b", DType.F32, new long[] {2}, new float[] {3, 4})));
        return f;
    }

    private Path smallWith(Consumer<ObjectNode> edit) throws IOException {
        Path f = small();
        SafetensorsTestFiles.rewriteHeader(f, edit);
        return f;
    }

    private static void offsets(ObjectNode header, String tensor, long begin, long end) {
        ArrayNode o = ((ObjectNode) header.get(tensor)).putArray("data_offsets");
        o.add(begin).add(end);
    }

    @Test
    void truncatedShard() throws IOException {
        Path dir = golden();
        Path shard = dir.resolve(SHARD2);
        SafetensorsTestFiles.truncate(shard, Files.size(shard) - 1000);
        // model.word_embeddings.weight is the last tensor of the shard.
        assertFault(() -> SafetensorsCheckpoint.open(dir), SHARD2, "'model.word_embeddings.weight'", "truncated");
        assertFault(() -> SafetensorsCheckpoint.openFile(shard), SHARD2, "model.word_embeddings.weight");

        SafetensorsTestFiles.truncate(shard, 100); // cut inside the header
        assertFault(() -> SafetensorsCheckpoint.open(dir), SHARD2, "exceeds the file size");
        SafetensorsTestFiles.truncate(shard, 5);
        assertFault(() -> SafetensorsCheckpoint.open(dir), SHARD2, "too short");
        SafetensorsTestFiles.truncate(shard, 0);
        assertFault(() -> SafetensorsCheckpoint.open(dir), SHARD2, "too short");
    }

    @Test
    void absurdHeaderLength() throws IOException {
        Path f = small();
        byte[] len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(200L << 20).array();
        SafetensorsTestFiles.patch(f, 0, len);
        assertFault(() -> SafetensorsCheckpoint.openFile(f), "small.safetensors", "absurd");
        SafetensorsTestFiles.patch(f, 0, new byte[] {-1, -1, -1, -1, -1, -1, -1, -1});
        assertFault(() -> SafetensorsCheckpoint.openFile(f), "small.safetensors", "18446744073709551615");
    }

    @Test
    void corruptHeaderBytes() throws IOException {
        Path dir = golden();
        SafetensorsTestFiles.patch(dir.resolve(SHARD1), 20, "\u0000garbage}{".getBytes(StandardCharsets.UTF_8));
        assertFault(() -> SafetensorsCheckpoint.open(dir), SHARD1, "not valid JSON");

        Path f = tmp.resolve("bad-utf8.safetensors");
        SafetensorsTestFiles.writeRaw(f, "{\"a\":{}}", new byte[0]);
        SafetensorsTestFiles.patch(f, 10, new byte[] {(byte) 0xC3, (byte) 0x28});
        assertFault(() -> SafetensorsCheckpoint.openFile(f), "bad-utf8.safetensors");
    }

    @Test
    void headerOfWrongShape() {
        record Case(String header, String... needles) { }
        List<Case> cases = List.of(
                new Case("[1, 2]", "not a JSON object"),
                new Case("", "JSON"),
                new Case("{\"a\": 5}", "'a'", "not a JSON object"),
                new Case("{\"a\": {\"dtype\": 5, \"shape\": [2], \"data_offsets\": [0, 8]}}", "'a'", "dtype"),
                new Case("{\"a\": {\"dtype\": \"F32\", \"shape\": \"2\", \"data_offsets\": [0, 8]}}", "'a'", "shape"),
                new Case("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0]}}", "'a'", "data_offsets"),
                new Case("{\"a\": {\"dtype\": \"F32\", \"shape\": [2]}}", "'a'", "data_offsets"),
                new Case("{\"a\": {\"dtype\": \"F32\", \"shape\": [2.5], \"data_offsets\": [0, 8]}}", "'a'", "shape"),
                new Case("{\"a\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}", "'a'", "shape"),
                new Case("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 99999999999999999999]}}", "'a'"),
                new Case("{\"a\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296], \"data_offsets\": [0, 8]}}",
                        "'a'", "too large"),
                new Case("{\"__metadata__\": {\"format\": 1}}", "__metadata__"),
                new Case("{\"__metadata__\": []}", "__metadata__"),
                new Case("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                        + " \"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", "JSON", "a"),
                new Case("{} trailing", "JSON"));
        for (int i = 0; i < cases.size(); i++) {
            Case c = cases.get(i);
            Path f = tmp.resolve("case" + i + ".safetensors");
            SafetensorsTestFiles.writeRaw(f, c.header(), new byte[8]);
            String[] needles = new String[c.needles().length + 1];
            needles[0] = f.getFileName().toString();
            System.arraycopy(c.needles(), 0, needles, 1, c.needles().length);
            assertFault(() -> SafetensorsCheckpoint.openFile(f), needles);
        }
    }

    @Test
    void lyingOffsets() throws IOException {
        // Span does not match shape x dtype.
        Path f = smallWith(h -> offsets(h, "b", 8, 18));
        assertFault(() -> SafetensorsCheckpoint.openFile(f), "small.safetensors", "'b'", "10 bytes");
        // End before begin.
        Path g = smallWith(h -> offsets(h, "b", 16, 8));
        assertFault(() -> SafetensorsCheckpoint.openFile(g), "small.safetensors", "'b'");
        // Beyond the end of the data area.
        Path k = smallWith(h -> offsets(h, "b", 16, 24));
        assertFault(() -> SafetensorsCheckpoint.openFile(k), "small.safetensors", "'b'", "data area");
        // Overlapping.
        Path o = smallWith(h -> offsets(h, "b", 4, 12));
        assertFault(() -> SafetensorsCheckpoint.openFile(o), "small.safetensors", "'a'", "'b'", "overlap");
        Path same = smallWith(h -> offsets(h, "b", 0, 8));
        assertFault(() -> SafetensorsCheckpoint.openFile(same), "small.safetensors", "'a'", "'b'", "overlap");

        // The same on a golden shard: a tensor shifted onto its neighbour.
        Path dir = golden();
        SafetensorsTestFiles.rewriteHeader(dir.resolve(SHARD1), h -> {
            ArrayNode o1 = (ArrayNode) h.get("model.layers.0.input_layernorm.weight").get("data_offsets");
            long begin = o1.get(0).longValue();
            offsets(h, "model.layers.0.input_layernorm.weight", begin - 2, o1.get(1).longValue() - 2);
        });
        assertFault(() -> SafetensorsCheckpoint.open(dir), SHARD1, "model.layers.0.input_layernorm.weight", "overlap");
    }

    @Test
    void unknownDtype() throws IOException {
        Path f = smallWith(h -> ((ObjectNode) h.get("b")).put("dtype", "I8"));
        assertFault(() -> SafetensorsCheckpoint.openFile(f), "small.safetensors", "'b'", "'I8'");
        Path dir = golden();
        SafetensorsTestFiles.rewriteHeader(dir.resolve(SHARD2),
                h -> ((ObjectNode) h.get("model.layers.2.mlp.gate.expert_bias")).put("dtype", "F64"));
        assertFault(() -> SafetensorsCheckpoint.open(dir), SHARD2, "'model.layers.2.mlp.gate.expert_bias'", "'F64'");
    }

    @Test
    void deletedShard() throws IOException {
        Path dir = golden();
        Files.delete(dir.resolve(SHARD1));
        assertFault(() -> SafetensorsCheckpoint.open(dir), SafetensorsCheckpoint.INDEX_FILE, SHARD1, "does not exist");
    }

    @Test
    void indexNamesATensorTheShardLacks() throws IOException {
        Path dir = golden();
        Path index = dir.resolve(SafetensorsCheckpoint.INDEX_FILE);
        ObjectNode root = (ObjectNode) SafetensorsTestFiles.JSON.readTree(index.toFile());
        ((ObjectNode) root.get("weight_map")).put("model.layers.9.ghost.weight", SHARD2);
        Files.writeString(index, SafetensorsTestFiles.JSON.writeValueAsString(root));
        assertFault(() -> SafetensorsCheckpoint.open(dir), "'model.layers.9.ghost.weight'", SHARD2, "does not contain");

        // A tensor the index places in the wrong shard.
        ((ObjectNode) root.get("weight_map")).remove("model.layers.9.ghost.weight");
        ((ObjectNode) root.get("weight_map")).put("model.norm.weight", SHARD1);
        Files.writeString(index, SafetensorsTestFiles.JSON.writeValueAsString(root));
        assertFault(() -> SafetensorsCheckpoint.open(dir), "'model.norm.weight'", SHARD1, SHARD2);

        // A file name that escapes the model directory.
        ((ObjectNode) root.get("weight_map")).put("model.norm.weight", "../" + SHARD2);
        Files.writeString(index, SafetensorsTestFiles.JSON.writeValueAsString(root));
        assertFault(() -> SafetensorsCheckpoint.open(dir), "'model.norm.weight'", "outside");
    }

    @Test
    void brokenIndex() throws IOException {
        Path dir = golden();
        Path index = dir.resolve(SafetensorsCheckpoint.INDEX_FILE);
        Files.writeString(index, "{\"weight_map\": ");
        assertFault(() -> SafetensorsCheckpoint.open(dir), SafetensorsCheckpoint.INDEX_FILE, "JSON");
        Files.writeString(index, "{\"metadata\": {}}");
        assertFault(() -> SafetensorsCheckpoint.open(dir), SafetensorsCheckpoint.INDEX_FILE, "weight_map");
        Files.writeString(index, "{\"weight_map\": {\"lm_head.weight\": 3}}");
        assertFault(() -> SafetensorsCheckpoint.open(dir), SafetensorsCheckpoint.INDEX_FILE, "'lm_head.weight'");
    }

    @Test
    void tensorStoredInTwoShards() throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("dup"));
        var a = SafetensorsWriter.Tensor.of("a", DType.BF16, new long[] {2}, new float[] {1, 2});
        var b = SafetensorsWriter.Tensor.of("b", DType.BF16, new long[] {2}, new float[] {3, 4});
        SafetensorsWriter.writeSharded(dir, List.of(a, b), 4);
        // Rewrite shard 2 so that it also carries "a".
        SafetensorsWriter.write(dir.resolve("model-00002-of-00002.safetensors"), null, List.of(b,
                new SafetensorsWriter.Tensor("a", DType.BF16, new long[] {2}, MemorySegment.ofArray(new byte[4]))));
        assertFault(() -> SafetensorsCheckpoint.open(dir), "'a'", "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors");
    }
}
