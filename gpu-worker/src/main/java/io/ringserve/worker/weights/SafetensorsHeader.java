package io.ringserve.worker.weights;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import tools.jackson.core.JacksonException;
import tools.jackson.core.StreamReadFeature;
import tools.jackson.databind.DeserializationFeature;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Parses and validates the header of one mapped safetensors file.
 *
 * <p>Layout: {@code u64 little-endian N}, then {@code N} bytes of UTF-8 JSON, then the data area.
 * Every check that can be done without touching tensor data happens here, so that a truncated or
 * corrupt download fails at open with a message instead of at first use with garbage or a crash.
 *
 * @param metadata the {@code __metadata__} string map (empty if absent)
 * @param tensors  the tensors in header order
 */
record SafetensorsHeader(Map<String, String> metadata, List<TensorInfo> tensors) {

    /** Reference implementations refuse headers above 100 MB; real ones are a few hundred kB. */
    static final long MAX_HEADER_BYTES = 100L * 1024 * 1024;

    static final ValueLayout.OfLong U64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Duplicate keys would otherwise silently resolve to the last one. */
    static final JsonMapper JSON = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    /**
     * @param file    the file name, for messages and for {@link TensorInfo#file()}
     * @param mapping the whole file
     * @return the validated header
     * @throws WeightsException on any inconsistency
     */
    static SafetensorsHeader parse(Path file, MemorySegment mapping) {
        long fileSize = mapping.byteSize();
        if (fileSize < 8) {
            throw new WeightsException(file + ": file is " + fileSize
                    + " bytes, too short for the 8-byte safetensors header length");
        }
        long n = mapping.get(U64_LE, 0);
        // A negative long is an unsigned value >= 2^63: certainly absurd.
        if (n < 0 || n > MAX_HEADER_BYTES) {
            throw new WeightsException(file + ": header length " + Long.toUnsignedString(n)
                    + " is absurd (limit " + MAX_HEADER_BYTES + " bytes); not a safetensors file?");
        }
        if (n > fileSize - 8) {
            throw new WeightsException(file + ": header length " + n + " exceeds the file size "
                    + fileSize + " (truncated file?)");
        }
        long dataStart = 8 + n;
        long dataSize = fileSize - dataStart;

        JsonNode root;
        try {
            root = JSON.readTree(mapping.asSlice(8, n).toArray(ValueLayout.JAVA_BYTE));
        } catch (JacksonException e) {
            throw new WeightsException(file + ": header is not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new WeightsException(file + ": header is not a JSON object");
        }

        Map<String, String> metadata = new LinkedHashMap<>();
        List<TensorInfo> tensors = new ArrayList<>();
        for (Map.Entry<String, JsonNode> e : root.properties()) {
            String name = e.getKey();
            JsonNode node = e.getValue();
            if (name.equals("__metadata__")) {
                readMetadata(file, node, metadata);
                continue;
            }
            tensors.add(readTensor(file, name, node, dataStart, dataSize));
        }
        checkOverlaps(file, tensors, dataStart);
        return new SafetensorsHeader(Map.copyOf(metadata), List.copyOf(tensors));
    }

    private static void readMetadata(Path file, JsonNode node, Map<String, String> out) {
        if (!node.isObject()) {
            throw new WeightsException(file + ": __metadata__ is not a JSON object");
        }
        for (Map.Entry<String, JsonNode> m : node.properties()) {
            if (!m.getValue().isString()) {
                throw new WeightsException(file + ": __metadata__ value '" + m.getKey() + "' is not a string");
            }
            out.put(m.getKey(), m.getValue().stringValue());
        }
    }

    private static TensorInfo readTensor(Path file, String name, JsonNode node, long dataStart, long dataSize) {
        String where = file + ": tensor '" + name + "'";
        if (!node.isObject()) {
            throw new WeightsException(where + ": entry is not a JSON object");
        }
        JsonNode dtypeNode = node.get("dtype");
        if (dtypeNode == null || !dtypeNode.isString()) {
            throw new WeightsException(where + ": 'dtype' is missing or not a string");
        }
        DType dtype = DType.parse(dtypeNode.stringValue(), file, name);
        long[] shape = longArray(where, node.get("shape"), "shape", -1);
        long[] offsets = longArray(where, node.get("data_offsets"), "data_offsets", 2);
        long begin = offsets[0];
        long end = offsets[1];

        long expected;
        try {
            long count = 1;
            for (long d : shape) {
                count = Math.multiplyExact(count, d);
            }
            expected = Math.multiplyExact(count, (long) dtype.byteSize());
        } catch (ArithmeticException ex) {
            throw new WeightsException(where + ": shape " + Arrays.toString(shape) + " is too large");
        }
        if (end < begin) {
            throw new WeightsException(where + ": data_offsets [" + begin + ", " + end + "] end before they begin");
        }
        if (end - begin != expected) {
            throw new WeightsException(where + ": data_offsets [" + begin + ", " + end + "] span " + (end - begin)
                    + " bytes but " + dtype + Arrays.toString(shape) + " needs " + expected);
        }
        if (end > dataSize) {
            throw new WeightsException(where + ": data_offsets [" + begin + ", " + end + "] reach past the "
                    + dataSize + "-byte data area (truncated file?)");
        }
        return new TensorInfo(name, dtype, shape, file, dataStart + begin, end - begin);
    }

    /** Reads an array of non-negative integers; {@code length < 0} means any length. */
    private static long[] longArray(String where, JsonNode node, String field, int length) {
        if (node == null || !node.isArray()) {
            throw new WeightsException(where + ": '" + field + "' is missing or not an array");
        }
        if (length >= 0 && node.size() != length) {
            throw new WeightsException(where + ": '" + field + "' has " + node.size() + " entries, expected " + length);
        }
        long[] out = new long[node.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode v = node.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
                throw new WeightsException(where + ": '" + field + "' entry " + v + " is not a non-negative integer");
            }
            out[i] = v.longValue();
        }
        return out;
    }

    private static void checkOverlaps(Path file, List<TensorInfo> tensors, long dataStart) {
        List<TensorInfo> sorted = new ArrayList<>(tensors);
        sorted.sort(Comparator.comparingLong(TensorInfo::dataOffset).thenComparingLong(TensorInfo::byteSize));
        for (int i = 1; i < sorted.size(); i++) {
            TensorInfo prev = sorted.get(i - 1);
            TensorInfo cur = sorted.get(i);
            if (cur.dataOffset() < prev.dataOffset() + prev.byteSize()) {
                throw new WeightsException(file + ": tensors '" + prev.name() + "' [" + (prev.dataOffset() - dataStart)
                        + ", " + (prev.dataOffset() - dataStart + prev.byteSize()) + ") and '" + cur.name() + "' ["
                        + (cur.dataOffset() - dataStart) + ", " + (cur.dataOffset() - dataStart + cur.byteSize())
                        + ") overlap");
            }
        }
    }
}
