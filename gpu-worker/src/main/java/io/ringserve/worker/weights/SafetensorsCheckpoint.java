package io.ringserve.worker.weights;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;

/**
 * A safetensors checkpoint (one file or a sharded set) memory-mapped read-only.
 *
 * <p>Each file is mapped once, whole, into a shared {@link Arena} owned by this object, so tensors
 * are served as zero-copy slices and multi-GB shards never land on the Java heap. Every header is
 * validated at open. {@link #close()} unmaps everything; segments handed out before become
 * inaccessible then. Instances are safe to use from several threads.
 */
public final class SafetensorsCheckpoint implements AutoCloseable {

    /** Name of the index that ties shards together. */
    public static final String INDEX_FILE = "model.safetensors.index.json";
    /** Name of an unsharded checkpoint. */
    public static final String SINGLE_FILE = "model.safetensors";

    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private record Entry(TensorInfo info, MemorySegment data) {
    }

    private final Path source;
    private final Path index;
    private final Arena arena;
    private final Map<String, Entry> tensors;
    private final int fileCount;
    private final long totalBytes;
    /** bf16 copies of F16/F32 tensors, made once per tensor and freed with the arena. */
    private final Map<String, MemorySegment> converted = new ConcurrentHashMap<>();
    private volatile boolean closed;

    private SafetensorsCheckpoint(Path source, Path index, Arena arena, Map<String, Entry> tensors, int fileCount) {
        this.source = source;
        this.index = index;
        this.arena = arena;
        this.tensors = Collections.unmodifiableMap(new TreeMap<>(tensors));
        this.fileCount = fileCount;
        this.totalBytes = tensors.values().stream().mapToLong(e -> e.info().byteSize()).sum();
    }

    /**
     * Opens the checkpoint in a model directory: {@value #INDEX_FILE} if present, else
     * {@value #SINGLE_FILE}, else the only {@code *.safetensors} file there.
     *
     * @param modelDir the directory (as downloaded from a model hub)
     * @return the opened checkpoint
     * @throws WeightsException if no weights are found or any file is inconsistent
     */
    public static SafetensorsCheckpoint open(Path modelDir) {
        if (!Files.isDirectory(modelDir)) {
            throw new WeightsException(modelDir + ": not a directory, cannot look for safetensors weights");
        }
        Path indexFile = modelDir.resolve(INDEX_FILE);
        if (Files.isRegularFile(indexFile)) {
            return openIndexed(modelDir, indexFile);
        }
        Path single = modelDir.resolve(SINGLE_FILE);
        if (Files.isRegularFile(single)) {
            return openFile(single);
        }
        List<Path> candidates;
        try (Stream<Path> s = Files.list(modelDir)) {
            candidates = s.filter(p -> p.getFileName().toString().endsWith(".safetensors") && Files.isRegularFile(p))
                    .sorted().toList();
        } catch (IOException e) {
            throw new WeightsException(modelDir + ": cannot list directory: " + e.getMessage(), e);
        }
        if (candidates.size() == 1) {
            return openFile(candidates.getFirst());
        }
        if (candidates.isEmpty()) {
            List<String> pytorch = pytorchWeightFiles(modelDir);
            if (!pytorch.isEmpty()) {
                throw new WeightsException(modelDir + ": " + pytorchNote(pytorch));
            }
            throw new WeightsException(modelDir + ": no safetensors weights (expected " + INDEX_FILE + ", "
                    + SINGLE_FILE + " or a single *.safetensors file)");
        }
        // Guessing which files belong together could silently mix two checkpoints.
        throw new WeightsException(modelDir + ": " + candidates.size() + " *.safetensors files but no " + INDEX_FILE
                + " to say which belong to the checkpoint: "
                + candidates.stream().map(p -> p.getFileName().toString()).toList());
    }

    /** Names of PyTorch pickle weights ({@code pytorch_model.bin}, its shards or their index) in a directory. */
    private static List<String> pytorchWeightFiles(Path modelDir) {
        try (Stream<Path> s = Files.list(modelDir)) {
            return s.map(p -> p.getFileName().toString())
                    .filter(n -> n.equals("pytorch_model.bin") || n.equals("pytorch_model.bin.index.json")
                            || (n.startsWith("pytorch_model-") && n.endsWith(".bin")))
                    .sorted().toList();
        } catch (IOException e) {
            return List.of();
        }
    }

    /**
     * Explains that PyTorch pickle weights are not read (loading them means running a pickle) and how to
     * convert them once; the converted directory then holds {@value #SINGLE_FILE} or shards with
     * {@value #INDEX_FILE}, which this loader maps.
     */
    static String pytorchNote(List<String> files) {
        return "only PyTorch weights (" + String.join(", ", files) + "), no safetensors; ring-serve reads safetensors only."
                + " Convert the checkpoint once, in Python with torch and transformers installed:"
                + " python -c \"import sys, torch; from transformers import AutoModelForCausalLM;"
                + " m = AutoModelForCausalLM.from_pretrained(sys.argv[1], torch_dtype=torch.bfloat16, trust_remote_code=True);"
                + " m.save_pretrained(sys.argv[2], safe_serialization=True)\" SRC_DIR OUT_DIR"
                + " (then copy config.json, generation_config.json and the tokenizer files into OUT_DIR if they are missing),"
                + " or for a single pytorch_model.bin without transformers:"
                + " python -c \"import torch; from safetensors.torch import save_file;"
                + " sd = torch.load('pytorch_model.bin', map_location='cpu', weights_only=True);"
                + " save_file({k: v.contiguous() for k, v in sd.items()}, 'model.safetensors', metadata={'format': 'pt'})\"";
    }

    /**
     * Opens a single safetensors file.
     *
     * @param file the file
     * @return the opened checkpoint
     * @throws WeightsException if the file cannot be read or is inconsistent
     */
    public static SafetensorsCheckpoint openFile(Path file) {
        Arena arena = Arena.ofShared();
        try {
            Map<String, Entry> tensors = new LinkedHashMap<>();
            for (Entry e : mapFile(file, arena)) {
                tensors.put(e.info().name(), e);
            }
            return new SafetensorsCheckpoint(file, null, arena, tensors, 1);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static SafetensorsCheckpoint openIndexed(Path dir, Path indexFile) {
        Map<String, String> weightMap = readWeightMap(indexFile);
        // Shard file name -> tensors the index places there, in file order for stable messages.
        Map<String, List<String>> byFile = new TreeMap<>();
        weightMap.forEach((tensor, f) -> byFile.computeIfAbsent(f, k -> new ArrayList<>()).add(tensor));

        Path base = dir.toAbsolutePath().normalize();
        Map<String, Path> shardPaths = new LinkedHashMap<>();
        for (Map.Entry<String, List<String>> e : byFile.entrySet()) {
            Path shard = base.resolve(e.getKey()).normalize();
            String example = "tensor '" + e.getValue().getFirst() + "'"
                    + (e.getValue().size() > 1 ? " and " + (e.getValue().size() - 1) + " more" : "");
            // Checked lexically, not on the real path: hub caches link shards to blobs elsewhere.
            if (!shard.startsWith(base) || shard.equals(base)) {
                throw new WeightsException(indexFile + ": maps " + example + " to '" + e.getKey()
                        + "', which lies outside " + dir);
            }
            if (!Files.isRegularFile(shard)) {
                throw new WeightsException(indexFile + ": maps " + example + " to " + shard
                        + ", which does not exist");
            }
            shardPaths.put(e.getKey(), shard);
        }

        Arena arena = Arena.ofShared();
        try {
            Map<String, Entry> tensors = new LinkedHashMap<>();
            for (Path shard : shardPaths.values()) {
                for (Entry entry : mapFile(shard, arena)) {
                    Entry prev = tensors.putIfAbsent(entry.info().name(), entry);
                    if (prev != null) {
                        throw new WeightsException("tensor '" + entry.info().name() + "' is stored twice: in "
                                + prev.info().file() + " and in " + shard);
                    }
                }
            }
            for (Map.Entry<String, String> m : weightMap.entrySet()) {
                Path expected = shardPaths.get(m.getValue());
                Entry entry = tensors.get(m.getKey());
                if (entry == null || !entry.info().file().equals(expected)) {
                    throw new WeightsException(indexFile + ": maps tensor '" + m.getKey() + "' to " + expected
                            + ", but that file does not contain it"
                            + (entry == null ? "" : " (it is in " + entry.info().file() + ")"));
                }
            }
            return new SafetensorsCheckpoint(dir, indexFile, arena, tensors, shardPaths.size());
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static Map<String, String> readWeightMap(Path indexFile) {
        JsonNode root;
        try {
            root = SafetensorsHeader.JSON.readTree(Files.readAllBytes(indexFile));
        } catch (IOException e) {
            throw new WeightsException(indexFile + ": cannot read: " + e.getMessage(), e);
        } catch (JacksonException e) {
            throw new WeightsException(indexFile + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject()) {
            throw new WeightsException(indexFile + ": 'weight_map' is missing or not a JSON object");
        }
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : map.properties()) {
            if (!e.getValue().isString()) {
                throw new WeightsException(indexFile + ": weight_map entry for tensor '" + e.getKey()
                        + "' is not a file name string");
            }
            out.put(e.getKey(), e.getValue().stringValue());
        }
        return out;
    }

    /** Maps one file whole and slices out every tensor its header declares. */
    private static List<Entry> mapFile(Path file, Arena arena) {
        MemorySegment mapping;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) {
                throw new WeightsException(file + ": file is " + size
                        + " bytes, too short for the 8-byte safetensors header length");
            }
            // The mapping outlives the channel; it is released when the arena closes.
            mapping = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
        } catch (IOException e) {
            throw new WeightsException(file + ": cannot map: " + e.getMessage(), e);
        }
        SafetensorsHeader header = SafetensorsHeader.parse(file, mapping);
        List<Entry> out = new ArrayList<>(header.tensors().size());
        for (TensorInfo t : header.tensors()) {
            out.add(new Entry(t, mapping.asSlice(t.dataOffset(), t.byteSize())));
        }
        return out;
    }

    /** @return all tensor names, sorted */
    public Set<String> names() {
        return tensors.keySet();
    }

    /**
     * @param name a tensor name
     * @return whether the checkpoint holds it
     */
    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    /**
     * @param name a tensor name
     * @return its dtype, shape and location
     * @throws WeightsException if the tensor is not in the checkpoint
     */
    public TensorInfo info(String name) {
        return entry(name).info();
    }

    /**
     * Returns the tensor's bytes as stored: little-endian elements, row-major. The segment is a
     * read-only slice of the file mapping (no copy) and is valid until {@link #close()}; it is not
     * necessarily aligned to the element size.
     *
     * @param name a tensor name
     * @return the raw data
     * @throws WeightsException if the tensor is not in the checkpoint
     */
    public MemorySegment raw(String name) {
        return entry(name).data();
    }

    /**
     * Reads a tensor into a new float array, widening BF16/F16 exactly.
     *
     * @param name          a tensor name
     * @param expectedShape the shape the caller requires; pass none to skip the check
     * @return the elements in row-major order
     * @throws WeightsException if the tensor is missing, has another shape, or exceeds an array
     */
    public float[] readFloat(String name, long... expectedShape) {
        Entry e = entry(name);
        checkShape(e.info(), expectedShape);
        long count = e.info().elementCount();
        if (count > Integer.MAX_VALUE - 8) {
            throw new WeightsException(e.info().file() + ": tensor '" + name + "' has " + count
                    + " elements, too many for a float[]; use raw() or bf16()");
        }
        int n = (int) count;
        float[] out = new float[n];
        MemorySegment src = e.data();
        switch (e.info().dtype()) {
            case F32 -> MemorySegment.copy(src, F32_LE, 0, out, 0, n);
            case BF16 -> {
                for (int i = 0; i < n; i++) {
                    out[i] = Bf16.toFloat(src.get(I16_LE, 2L * i));
                }
            }
            case F16 -> {
                for (int i = 0; i < n; i++) {
                    out[i] = Float.float16ToFloat(src.get(I16_LE, 2L * i));
                }
            }
        }
        return out;
    }

    /**
     * Returns a tensor as little-endian bfloat16. A BF16 tensor comes back as its zero-copy file
     * slice; F16/F32 tensors are converted (round-to-nearest-even, NaN kept) once into off-heap
     * memory owned by this checkpoint and freed by {@link #close()}.
     *
     * @param name          a tensor name
     * @param expectedShape the shape the caller requires; pass none to skip the check
     * @return {@code elementCount * 2} bytes of bf16 data
     * @throws WeightsException if the tensor is missing or has another shape
     */
    public MemorySegment bf16(String name, long... expectedShape) {
        Entry e = entry(name);
        checkShape(e.info(), expectedShape);
        if (e.info().dtype() == DType.BF16) {
            return e.data();
        }
        return converted.computeIfAbsent(name, k -> toBf16(e));
    }

    private MemorySegment toBf16(Entry e) {
        long n = e.info().elementCount();
        MemorySegment src = e.data();
        MemorySegment dst = arena.allocate(2 * n, 2);
        switch (e.info().dtype()) {
            case F32 -> {
                for (long i = 0; i < n; i++) {
                    dst.set(I16_LE, 2 * i, Bf16.fromFloat(src.get(F32_LE, 4 * i)));
                }
            }
            case F16 -> {
                for (long i = 0; i < n; i++) {
                    dst.set(I16_LE, 2 * i, Bf16.fromFloat(Float.float16ToFloat(src.get(I16_LE, 2 * i))));
                }
            }
            case BF16 -> MemorySegment.copy(src, 0, dst, 0, 2 * n);
        }
        return dst.asReadOnly();
    }

    /** @return the sum of all tensors' data sizes in bytes */
    public long totalBytes() {
        return totalBytes;
    }

    /** Unmaps all files and frees converted tensors; idempotent. */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            arena.close();
        }
    }

    @Override
    public String toString() {
        return "SafetensorsCheckpoint[" + source + ", " + tensors.size() + " tensors in " + fileCount + " file(s), "
                + totalBytes + " bytes]";
    }

    private Entry entry(String name) {
        if (closed) {
            throw new WeightsException(source + ": checkpoint is closed (asked for tensor '" + name + "')");
        }
        Entry e = tensors.get(name);
        if (e == null) {
            throw new WeightsException("tensor '" + name + "' not found in " + source
                    + (index != null ? " (not listed in " + index.getFileName() + ")" : "")
                    + "; it has " + tensors.size() + " tensors in " + fileCount + " file(s)");
        }
        return e;
    }

    private static void checkShape(TensorInfo info, long[] expected) {
        if (expected.length > 0 && !Arrays.equals(expected, info.shape())) {
            throw new WeightsException(info.file() + ": tensor '" + info.name() + "' expected shape "
                    + Arrays.toString(expected) + " but the file has " + Arrays.toString(info.shape()));
        }
    }
}
