package io.ringserve.worker.weights;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.function.Consumer;
import java.util.stream.Stream;

import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ObjectNode;

/** Helpers shared by the safetensors tests: fixture location and raw file surgery. */
final class SafetensorsTestFiles {

    static final JsonMapper JSON = JsonMapper.builder().build();
    static final String SHARD1 = "model-00001-of-00002.safetensors";
    static final String SHARD2 = "model-00002-of-00002.safetensors";

    private SafetensorsTestFiles() {
    }

    /** The golden two-shard checkpoint on the test classpath. */
    static Path goldenDir() {
        URL url = SafetensorsTestFiles.class.getResource("/golden/tiny-ring-a/" + SafetensorsCheckpoint.INDEX_FILE);
        if (url == null) {
            throw new IllegalStateException("golden fixture missing from test resources");
        }
        try {
            return Path.of(url.toURI()).getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Copies the golden checkpoint files into {@code dir} so that they can be damaged. */
    static Path copyGolden(Path dir) throws IOException {
        for (String f : new String[] {SHARD1, SHARD2, SafetensorsCheckpoint.INDEX_FILE, "config.json"}) {
            Files.copy(goldenDir().resolve(f), dir.resolve(f));
        }
        return dir;
    }

    /** Header length N from the first 8 bytes. */
    static long headerLength(Path file) throws IOException {
        byte[] all = Files.readAllBytes(file);
        return ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    /** Writes {@code u64 N | header text | data} byte for byte, without padding or checks. */
    static void writeRaw(Path file, String header, byte[] data) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h).put(data);
        try {
            Files.write(file, b.array());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Re-encodes the JSON header after {@code edit}, keeping the data area as it is. */
    static void rewriteHeader(Path file, Consumer<ObjectNode> edit) throws IOException {
        byte[] all = Files.readAllBytes(file);
        int n = (int) headerLength(file);
        ObjectNode header = (ObjectNode) JSON.readTree(Arrays.copyOfRange(all, 8, 8 + n));
        edit.accept(header);
        writeRaw(file, JSON.writeValueAsString(header), Arrays.copyOfRange(all, 8 + n, all.length));
    }

    /** Overwrites bytes at {@code pos} in place. */
    static void patch(Path file, long pos, byte[] bytes) throws IOException {
        byte[] all = Files.readAllBytes(file);
        System.arraycopy(bytes, 0, all, (int) pos, bytes.length);
        Files.write(file, all);
    }

    static void truncate(Path file, long size) throws IOException {
        try (var ch = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.WRITE)) {
            ch.truncate(size);
        }
    }

    static long countFiles(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.count();
        }
    }
}
