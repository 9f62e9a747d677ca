package io.ringserve.worker.pipeline;

import io.ringserve.protocol.v1.HiddenDtype;
import io.ringserve.protocol.v1.StageHello;
import io.ringserve.worker.reference.LayerRange;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * What a stage must agree on with its neighbours before it joins a chain: the same model (config.json), the
 * same tokenizer (tokenizer.json), and a layer range that starts where the previous stage's ends.
 *
 * @param configSha256    lowercase hex SHA-256 of config.json
 * @param tokenizerSha256 lowercase hex SHA-256 of tokenizer.json, empty when the model has none
 * @param layers          the layers this worker holds
 */
public record StageIdentity(String configSha256, String tokenizerSha256, LayerRange layers) {
    /** Protocol version of the stage stream; 1 for ringserve.v1. */
    public static final int PROTOCOL_VERSION = 1;

    /** The identity of a worker serving the checkpoint in {@code modelDir}. */
    public static StageIdentity of(Path modelDir, LayerRange layers) {
        return new StageIdentity(sha256(modelDir.resolve("config.json")), sha256(modelDir.resolve("tokenizer.json")), layers);
    }

    /**
     * The identity of a worker serving a model known by its config alone (a benchmark preset with random weights):
     * the checksum of its config.json text, no tokenizer.
     */
    public static StageIdentity of(io.ringserve.model.config.ModelConfig config, LayerRange layers) {
        try {
            byte[] json = config.toJson().getBytes(java.nio.charset.StandardCharsets.UTF_8);
            return new StageIdentity(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(json)), "", layers);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Lowercase hex SHA-256 of a file's bytes, or "" when it does not exist. */
    static String sha256(Path file) {
        if (!Files.exists(file)) {
            return "";
        }
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot be read (" + e.getMessage() + ")", e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The hello this worker sends to the next stage. */
    StageHello hello(int kvBlockSize, int kvBlocks, HiddenDtype dtype, int maxBatchTokens, int maxSequences) {
        return StageHello.newBuilder()
                .setProtocolVersion(PROTOCOL_VERSION)
                .setConfigSha256(configSha256)
                .setTokenizerSha256(tokenizerSha256)
                .setLayers(StageWire.range(layers))
                .setKvBlockSize(kvBlockSize)
                .setKvBlocks(kvBlocks)
                .setHiddenDtype(dtype)
                .setMaxBatchTokens(maxBatchTokens)
                .setMaxSequences(maxSequences)
                .build();
    }

    /**
     * Why this worker cannot follow the sender of {@code hello} in a chain, or null when it can. The reason
     * names what mismatched and both values.
     */
    String refusal(StageHello hello) {
        if (hello.getProtocolVersion() != PROTOCOL_VERSION) {
            return "protocol version mismatch: the previous stage speaks " + hello.getProtocolVersion() + ", this stage " + PROTOCOL_VERSION;
        }
        if (!hello.getConfigSha256().equals(configSha256)) {
            return "config.json checksum mismatch: the previous stage has sha256 " + hello.getConfigSha256() + ", this stage " + configSha256
                    + " (every stage must serve the same model)";
        }
        if (!hello.getTokenizerSha256().equals(tokenizerSha256)) {
            return "tokenizer.json checksum mismatch: the previous stage has sha256 " + hello.getTokenizerSha256() + ", this stage "
                    + tokenizerSha256 + " (every stage must serve the same model)";
        }
        io.ringserve.protocol.v1.LayerRange previous = hello.getLayers();
        if (previous.getTotal() != layers.total()) {
            return "layer count mismatch: the previous stage's model has " + previous.getTotal() + " layers, this stage's " + layers.total();
        }
        if (previous.getEnd() != layers.start()) {
            return "layer ranges are not contiguous: the previous stage holds layers " + StageWire.text(previous) + ", this stage holds "
                    + layers + " (it must start at layer " + previous.getEnd() + ")";
        }
        if (hello.getHiddenDtype() != HiddenDtype.HIDDEN_FLOAT32 && hello.getHiddenDtype() != HiddenDtype.HIDDEN_BFLOAT16) {
            return "hidden states encoded as " + hello.getHiddenDtype() + " are not supported";
        }
        if (hello.getKvBlockSize() < 1 || hello.getKvBlocks() < 1) {
            return "the head announced no KV cache (" + hello.getKvBlocks() + " blocks of " + hello.getKvBlockSize() + " positions)";
        }
        return null;
    }
}
