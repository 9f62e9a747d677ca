package io.ringserve.worker.demo;

import io.ringserve.model.config.BailingMoeConfig;
import io.ringserve.model.config.BailingMoeV2Config;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.worker.weights.DType;
import io.ringserve.worker.weights.SafetensorsWriter;
import io.ringserve.worker.weights.SafetensorsWriter.Tensor;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * Writes a BailingMoe checkpoint (V2 or v1, as the config says) with seeded random weights in Hugging Face
 * layout (config.json,
 * generation_config.json, model.safetensors or shards + index, and the demo tokenizer). The weights are
 * noise: what such a model generates is meaningless text.
 */
public final class SyntheticCheckpoint {
    /** The demo model: small enough to write in a moment and run fast on any CPU. */
    public static BailingMoeV2Config demoConfig() {
        return BailingMoeV2Config.ringMini20().withShape(1664, 256, 640, 4, 4, 2, 64, 32, 4, 4, 2, 128, 4096)
                .withTokens(1536, 1537, 1537);
    }

    /** A mid-size shape for CPU benchmarks: hidden 1024, 8 layers, 64 experts. */
    public static BailingMoeV2Config midConfig() {
        return BailingMoeV2Config.ringMini20().withShape(32768, 1024, 2816, 8, 8, 2, 128, 64, 8, 8, 4, 256, 32768);
    }

    /**
     * The v1 (Ring-lite) shape scaled down for CPU benchmarks: hidden 1024, 8 layers, 8 / 2 heads of 128,
     * 32 experts (intermediate 704) top-6, two shared experts fused (1408), vocab 32768, norm_head.
     */
    public static BailingMoeConfig liteMidConfig() {
        return BailingMoeConfig.ringLite().withShape(32768, 1024, 0, 8, 8, 2, 128, 32, 6, 2, 704, 32768);
    }

    private SyntheticCheckpoint() {
    }

    /**
     * Writes the checkpoint into {@code dir}, which must not exist or be empty. Files are written to a
     * sibling temporary directory first and moved into place at the end, so an interrupted run leaves
     * nothing half-written under {@code dir}.
     */
    public static void write(Path dir, ModelConfig config, long seed, long maxShardBytes) {
        try {
            if (Files.exists(dir)) {
                if (!Files.isDirectory(dir)) {
                    throw new IllegalArgumentException(dir + ": exists and is not a directory");
                }
                try (Stream<Path> s = Files.list(dir)) {
                    if (s.findAny().isPresent()) {
                        throw new IllegalArgumentException(dir + ": directory is not empty; choose a new or empty directory");
                    }
                }
            }
            Path parent = dir.toAbsolutePath().getParent();
            Files.createDirectories(parent);
            Path tmp = Files.createTempDirectory(parent, "." + dir.getFileName() + ".partial-");
            try {
                Files.writeString(tmp.resolve("config.json"), config.toJson());
                Files.writeString(tmp.resolve("generation_config.json"), "{\n  \"bos_token_id\": " + (config.bosTokenId() == null ? 1536 : config.bosTokenId())
                        + ",\n  \"eos_token_id\": [" + config.eosTokenId() + ", " + Math.min(1540, config.vocabSize() - 1) + "],\n  \"pad_token_id\": "
                        + config.padTokenId() + "\n}\n");
                copyResource("tokenizer.json", tmp);
                copyResource("tokenizer_config.json", tmp);
                List<Tensor> tensors = tensors(config, seed);
                if (maxShardBytes > 0) {
                    SafetensorsWriter.writeSharded(tmp, tensors, maxShardBytes);
                } else {
                    SafetensorsWriter.write(tmp.resolve("model.safetensors"), java.util.Map.of("format", "pt"), tensors);
                }
                Files.createDirectories(dir);
                try (Stream<Path> files = Files.list(tmp)) {
                    for (Path f : files.toList()) {
                        Files.move(f, dir.resolve(f.getFileName()), StandardCopyOption.ATOMIC_MOVE);
                    }
                }
            } finally {
                deleteTree(tmp);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(dir + ": " + e.getMessage(), e);
        }
    }

    /**
     * Every tensor the model needs: matrices ~ N(0, 0.02²)·scale in bf16, norms near 1, expert_bias in f32
     * (V2 only); q/k layernorms only with QK-norm.
     */
    static List<Tensor> tensors(ModelConfig c, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        int d = c.hiddenSize();
        List<Tensor> out = new ArrayList<>();
        out.add(matrix(rng, "model.word_embeddings.weight", c.vocabSize(), d, 1.0f));
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            String p = "model.layers." + i + ".";
            out.add(norm(rng, p + "input_layernorm.weight", d));
            out.add(matrix(rng, p + "attention.query_key_value.weight", c.qkvDim(), d, 0.05f));
            if (c.useQkNorm()) {
                out.add(norm(rng, p + "attention.query_layernorm.weight", c.headDim()));
                out.add(norm(rng, p + "attention.key_layernorm.weight", c.headDim()));
            }
            out.add(matrix(rng, p + "attention.dense.weight", d, c.queryDim(), 0.05f));
            out.add(norm(rng, p + "post_attention_layernorm.weight", d));
            if (c.isMoeLayer(i)) {
                out.add(matrix(rng, p + "mlp.gate.weight", c.numExperts(), d, 0.05f));
                if (c instanceof BailingMoeV2Config) {
                    float[] bias = new float[c.numExperts()];
                    for (int e = 0; e < bias.length; e++) {
                        bias[e] = (float) (rng.nextGaussian() * 0.01);
                    }
                    out.add(Tensor.of(p + "mlp.gate.expert_bias", DType.F32, new long[] {c.numExperts()}, bias));
                }
                for (int e = 0; e < c.numExperts(); e++) {
                    mlp(rng, out, p + "mlp.experts." + e + ".", c.moeIntermediateSize(), d);
                }
                if (c.numSharedExperts() > 0) {
                    mlp(rng, out, p + "mlp.shared_experts.", c.sharedExpertIntermediateSize(), d);
                }
            } else {
                mlp(rng, out, p + "mlp.", c.intermediateSize(), d);
            }
        }
        out.add(norm(rng, "model.norm.weight", d));
        out.add(matrix(rng, "lm_head.weight", c.vocabSize(), d, 0.05f));
        return out;
    }

    private static void mlp(SplittableRandom rng, List<Tensor> out, String prefix, int inter, int d) {
        out.add(matrix(rng, prefix + "gate_proj.weight", inter, d, 0.05f));
        out.add(matrix(rng, prefix + "up_proj.weight", inter, d, 0.05f));
        out.add(matrix(rng, prefix + "down_proj.weight", d, inter, 0.05f));
    }

    private static Tensor matrix(SplittableRandom rng, String name, int rows, int cols, float std) {
        float[] v = new float[rows * cols];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) rng.nextGaussian() * std;
        }
        return Tensor.of(name, DType.BF16, new long[] {rows, cols}, v);
    }

    private static Tensor norm(SplittableRandom rng, String name, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = 1.0f + (float) rng.nextGaussian() * 0.05f;
        }
        return Tensor.of(name, DType.BF16, new long[] {n}, v);
    }

    private static void copyResource(String name, Path dir) throws IOException {
        try (InputStream in = SyntheticCheckpoint.class.getResourceAsStream(name)) {
            if (in == null) {
                throw new IOException("resource " + name + " is missing from the jar");
            }
            Files.copy(in, dir.resolve(name));
        }
    }

    /** Deletes a directory and everything below it; a missing one is fine. */
    public static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
