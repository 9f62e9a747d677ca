package io.ringserve.worker.engine;

import io.ringserve.model.config.ModelConfig;
import io.ringserve.model.config.ConfigException;
import io.ringserve.model.config.GenerationConfig;
import io.ringserve.model.template.ChatTemplate;
import io.ringserve.model.tokenizer.Tokenizer;
import io.ringserve.model.tokenizer.TokenizerConfig;
import io.ringserve.worker.reference.LayerRange;
import io.ringserve.worker.reference.ModelWeights;
import io.ringserve.worker.reference.ReferenceForward;
import io.ringserve.worker.weights.SafetensorsCheckpoint;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A Hugging Face checkpoint directory opened for inference on the CPU reference engine: config,
 * generation config, memory-mapped weights (all layers, or the {@link LayerRange} of one pipeline stage), and
 * (when present) tokenizer and chat template.
 */
public final class LocalModel implements AutoCloseable {
    private final Path dir;
    private final ModelConfig config;
    private final GenerationConfig generation;
    private final SafetensorsCheckpoint checkpoint;
    private final ReferenceForward forward;
    private final long heldBytes;
    private Tokenizer tokenizer;
    private TokenizerConfig tokenizerConfig;

    private LocalModel(Path dir, ModelConfig config, GenerationConfig generation, SafetensorsCheckpoint checkpoint, LayerRange layers) {
        this.dir = dir;
        this.config = config;
        this.generation = generation;
        this.checkpoint = checkpoint;
        LayerRange range = layers != null ? layers : LayerRange.all(config.numHiddenLayers());
        this.forward = new ReferenceForward(ModelWeights.load(config, checkpoint, range));
        this.heldBytes = ModelWeights.heldBytes(config, checkpoint, range);
    }

    public static LocalModel open(Path dir) {
        return open(dir, null);
    }

    /**
     * Opens the checkpoint for one shard: only the tensors of {@code layers} (plus the embeddings on the first
     * shard, the final norm and lm_head on the last) are mapped; null means every layer.
     */
    public static LocalModel open(Path dir, LayerRange layers) {
        if (!Files.isDirectory(dir)) {
            throw new ConfigException(dir + ": not a model directory (expected config.json, *.safetensors, tokenizer.json)");
        }
        ModelConfig config = ModelConfig.load(dir);
        GenerationConfig generation = GenerationConfig.load(dir);
        SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.open(dir);
        try {
            return new LocalModel(dir, config, generation, checkpoint, layers);
        } catch (RuntimeException e) {
            checkpoint.close();
            throw e;
        }
    }

    public Path directory() {
        return dir;
    }

    public ModelConfig config() {
        return config;
    }

    public GenerationConfig generationConfig() {
        return generation;
    }

    /** The forward pass over the layers this model holds. */
    public ReferenceForward forward() {
        return forward;
    }

    /** The layers held: all of them unless opened for a shard. */
    public LayerRange layers() {
        return forward.layerRange();
    }

    /** Bytes of checkpoint tensors the held layers map: what the weights take in memory. */
    public long heldBytes() {
        return heldBytes;
    }

    /** Bytes of every tensor in the checkpoint, held or not. */
    public long checkpointBytes() {
        return checkpoint.totalBytes();
    }

    /** Every id that ends generation: generation_config.json {@code eos_token_id} (int or list) and config.json's. */
    public Set<Integer> eosTokenIds() {
        Set<Integer> ids = new LinkedHashSet<>(generation.eosTokenIds());
        if (config.eosTokenId() != null) {
            ids.add(config.eosTokenId());
        }
        return ids;
    }

    public synchronized Tokenizer tokenizer() {
        if (tokenizer == null) {
            Path file = dir.resolve("tokenizer.json");
            if (!Files.exists(file)) {
                throw new ConfigException(file + ": file not found (text input and output need the model's tokenizer)");
            }
            tokenizer = Tokenizer.load(file);
        }
        return tokenizer;
    }

    public synchronized TokenizerConfig tokenizerConfig() {
        if (tokenizerConfig == null) {
            Path file = dir.resolve("tokenizer_config.json");
            if (!Files.exists(file)) {
                throw new ConfigException(file + ": file not found (chat input needs the model's chat_template)");
            }
            tokenizerConfig = TokenizerConfig.load(file);
        }
        return tokenizerConfig;
    }

    /** Renders the chat template for these messages with the generation prompt appended. */
    public String renderChat(List<Map<String, Object>> messages) {
        TokenizerConfig tc = tokenizerConfig();
        if (tc.chatTemplate() == null) {
            throw new ConfigException(dir.resolve("tokenizer_config.json") + ": chat_template is missing");
        }
        return ChatTemplate.compile(tc.chatTemplate()).renderConversation(messages, Map.of(), tc.bosToken(), tc.eosToken());
    }

    @Override
    public void close() {
        checkpoint.close();
    }
}
