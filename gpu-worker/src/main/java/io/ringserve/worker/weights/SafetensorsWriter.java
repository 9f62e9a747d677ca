package io.ringserve.worker.weights;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;

import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/** Writes safetensors files, single or sharded with an index, readable by the reference loaders. */
public final class SafetensorsWriter {

    /** Writes happen in slices of this size because a ByteBuffer view cannot exceed 2 GB. */
    private static final long CHUNK = 64L << 20;

    private SafetensorsWriter() {
    }

    /**
     * One tensor to write.
     *
     * @param name  the tensor name
     * @param dtype the element type
     * @param shape dimensions, outermost first; empty for a scalar
     * @param data  exactly {@code product(shape) * dtype.byteSize()} bytes, little-endian elements
     *              in row-major order; heap or off-heap
     */
    public record Tensor(String name, DType dtype, long[] shape, MemorySegment data) {

        /** Validates the name and that the data length matches shape and dtype. */
        public Tensor {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(dtype, "dtype");
            Objects.requireNonNull(data, "data");
            if (name.isEmpty() || name.equals("__metadata__")) {
                throw new IllegalArgumentException("invalid tensor name '" + name + "'");
            }
            shape = shape.clone();
            long expected = dtype.byteSize();
            for (long d : shape) {
                if (d < 0) {
                    throw new IllegalArgumentException("tensor '" + name + "': negative dimension in "
                            + Arrays.toString(shape));
                }
                expected = Math.multiplyExact(expected, d);
            }
            if (data.byteSize() != expected) {
                throw new IllegalArgumentException("tensor '" + name + "': " + dtype + Arrays.toString(shape)
                        + " needs " + expected + " bytes but data has " + data.byteSize());
            }
        }

        /**
         * Builds a tensor from float values, narrowing to {@code dtype} (bf16 with round-to-nearest-even).
         *
         * @param name   the tensor name
         * @param dtype  the element type to store
         * @param shape  dimensions
         * @param values row-major elements
         * @return the tensor backed by a heap array
         */
        public static Tensor of(String name, DType dtype, long[] shape, float[] values) {
            MemorySegment seg = MemorySegment.ofArray(new byte[values.length * dtype.byteSize()]);
            ValueLayout.OfShort i16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < values.length; i++) {
                switch (dtype) {
                    case F32 -> seg.set(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN),
                            4L * i, values[i]);
                    case BF16 -> seg.set(i16, 2L * i, Bf16.fromFloat(values[i]));
                    case F16 -> seg.set(i16, 2L * i, Float.floatToFloat16(values[i]));
                }
            }
            return new Tensor(name, dtype, shape, seg);
        }

        /** @return a copy of the dimensions */
        @Override
        public long[] shape() {
            return shape.clone();
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Tensor t && name.equals(t.name) && dtype == t.dtype && Arrays.equals(shape, t.shape)
                    && data.equals(t.data);
        }

        @Override
        public int hashCode() {
            return Objects.hash(name, dtype, Arrays.hashCode(shape), data);
        }

        @Override
        public String toString() {
            return "Tensor[" + name + " " + dtype + Arrays.toString(shape) + "]";
        }
    }

    /**
     * Writes one file; tensors in insertion order; header padded with spaces to a multiple of 8 as
     * the reference writer does, so the data area starts 8-byte aligned. The file is written under a
     * temporary name and moved into place, so a failed write never leaves a truncated checkpoint.
     *
     * @param file     the target file (replaced if present)
     * @param metadata the {@code __metadata__} strings; null or empty to omit
     * @param tensors  the tensors
     * @throws IllegalArgumentException if two tensors share a name
     * @throws WeightsException         if the file cannot be written
     */
    public static void write(Path file, Map<String, String> metadata, List<Tensor> tensors) {
        checkUniqueNames(tensors);
        ObjectNode root = SafetensorsHeader.JSON.createObjectNode();
        if (metadata != null && !metadata.isEmpty()) {
            ObjectNode meta = root.putObject("__metadata__");
            metadata.forEach(meta::put);
        }
        long offset = 0;
        for (Tensor t : tensors) {
            ObjectNode node = root.putObject(t.name());
            node.put("dtype", t.dtype().name());
            ArrayNode shape = node.putArray("shape");
            for (long d : t.shape) {
                shape.add(d);
            }
            long end = offset + t.data().byteSize();
            node.putArray("data_offsets").add(offset).add(end);
            offset = end;
        }
        byte[] json = SafetensorsHeader.JSON.writeValueAsString(root).getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) & ~7;
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) {
            head.put((byte) ' ');
        }
        head.flip();

        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING)) {
                writeFully(ch, head);
                for (Tensor t : tensors) {
                    writeSegment(ch, t.data());
                }
            }
            try {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw new WeightsException(file + ": cannot write: " + e.getMessage(), e);
        }
    }

    /**
     * Writes shards of at most {@code maxShardBytes} of tensor data each (a larger single tensor
     * gets a shard of its own), named {@code model-00001-of-0000N.safetensors}, plus
     * {@value SafetensorsCheckpoint#INDEX_FILE}. Tensors keep their order across shards.
     *
     * @param dir           the target directory (created if missing)
     * @param tensors       the tensors, at least one
     * @param maxShardBytes the data budget per shard
     * @throws IllegalArgumentException if there are no tensors, names repeat, or the budget is not positive
     * @throws WeightsException         if a file cannot be written
     */
    public static void writeSharded(Path dir, List<Tensor> tensors, long maxShardBytes) {
        if (maxShardBytes <= 0) {
            throw new IllegalArgumentException("maxShardBytes must be positive: " + maxShardBytes);
        }
        if (tensors.isEmpty()) {
            throw new IllegalArgumentException("no tensors to write to " + dir);
        }
        checkUniqueNames(tensors);
        List<List<Tensor>> shards = new ArrayList<>();
        List<Tensor> current = new ArrayList<>();
        long currentBytes = 0;
        for (Tensor t : tensors) {
            long size = t.data().byteSize();
            if (!current.isEmpty() && currentBytes + size > maxShardBytes) {
                shards.add(current);
                current = new ArrayList<>();
                currentBytes = 0;
            }
            current.add(t);
            currentBytes += size;
        }
        shards.add(current);

        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new WeightsException(dir + ": cannot create directory: " + e.getMessage(), e);
        }
        Map<String, String> weightMap = new TreeMap<>();
        long total = 0;
        for (int i = 0; i < shards.size(); i++) {
            String name = String.format("model-%05d-of-%05d.safetensors", i + 1, shards.size());
            // transformers refuses safetensors files whose metadata lacks a known "format".
            write(dir.resolve(name), Map.of("format", "pt"), shards.get(i));
            for (Tensor t : shards.get(i)) {
                weightMap.put(t.name(), name);
                total += t.data().byteSize();
            }
        }
        ObjectNode index = SafetensorsHeader.JSON.createObjectNode();
        index.putObject("metadata").put("total_size", total);
        ObjectNode map = index.putObject("weight_map");
        weightMap.forEach(map::put);
        Path indexFile = dir.resolve(SafetensorsCheckpoint.INDEX_FILE);
        try {
            Files.writeString(indexFile,
                    SafetensorsHeader.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(index) + "\n");
        } catch (IOException e) {
            throw new WeightsException(indexFile + ": cannot write: " + e.getMessage(), e);
        }
    }

    private static void checkUniqueNames(List<Tensor> tensors) {
        Set<String> seen = new HashSet<>();
        for (Tensor t : tensors) {
            if (!seen.add(t.name())) {
                throw new IllegalArgumentException("tensor '" + t.name() + "' given twice");
            }
        }
    }

    private static void writeSegment(FileChannel ch, MemorySegment data) throws IOException {
        long size = data.byteSize();
        ByteBuffer staging = null;
        for (long pos = 0; pos < size; pos += CHUNK) {
            MemorySegment slice = data.asSlice(pos, Math.min(CHUNK, size - pos));
            ByteBuffer buf;
            try {
                buf = slice.asByteBuffer();
            } catch (UnsupportedOperationException e) {
                // Heap segments over int[]/float[]/... have no ByteBuffer view; copy through bytes.
                if (staging == null) {
                    staging = ByteBuffer.allocate((int) Math.min(CHUNK, size));
                }
                staging.clear().limit((int) slice.byteSize());
                MemorySegment.copy(slice, 0, MemorySegment.ofBuffer(staging), 0, slice.byteSize());
                buf = staging;
            }
            writeFully(ch, buf);
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) {
            ch.write(buf);
        }
    }
}
