package io.ringserve.gateway.model;

import io.ringserve.gateway.config.GatewayProperties;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.model.config.GenerationConfig;
import io.ringserve.model.template.ChatTemplate;
import io.ringserve.model.tokenizer.Tokenizer;
import io.ringserve.model.tokenizer.TokenizerConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The model the gateway serves: its tokenizer, chat template, context length and EOS ids, read once from
 * {@code ringserve.gateway.model-dir}. Immutable and thread-safe.
 *
 * @param id             model name clients use
 * @param tokenizer      the model's tokenizer
 * @param template       the chat template, null when the model has none
 * @param config         tokenizer_config.json
 * @param contextLength  longest prompt plus completion, from config.json max_position_embeddings
 * @param eosTokenIds    ids that end generation
 */
public record ServedModel(String id, Tokenizer tokenizer, ChatTemplate template, TokenizerConfig config,
                          int contextLength, Set<Integer> eosTokenIds) {

    /** Reads the model directory named by the properties; a missing or bad file fails startup. */
    public static ServedModel load(GatewayProperties properties) {
        Path dir = Path.of(properties.modelDir());
        if (!Files.isDirectory(dir)) {
            throw new IllegalStateException("ringserve.gateway.model-dir: " + dir + " is not a directory");
        }
        Tokenizer tokenizer = Tokenizer.fromDirectory(dir);
        TokenizerConfig config = TokenizerConfig.load(dir.resolve("tokenizer_config.json"));
        ModelConfig modelConfig = ModelConfig.load(dir);
        GenerationConfig generation = GenerationConfig.load(dir);
        Set<Integer> eos = new LinkedHashSet<>(generation.eosTokenIds());
        if (modelConfig.eosTokenId() != null) {
            eos.add(modelConfig.eosTokenId());
        }
        ChatTemplate template = config.chatTemplate() == null ? null : ChatTemplate.compile(config.chatTemplate());
        return new ServedModel(properties.modelId(), tokenizer, template, config,
                modelConfig.maxPositionEmbeddings(), Set.copyOf(eos));
    }

    /**
     * Renders the chat template with the generation prompt appended.
     *
     * @param messages plain maps with role and content
     * @param kwargs   extra template variables (chat_template_kwargs)
     */
    public String renderChat(List<Map<String, Object>> messages, Map<String, Object> kwargs) {
        if (template == null) {
            throw new IllegalStateException("the model has no chat template");
        }
        return template.renderConversation(messages, kwargs, config.bosToken(), config.eosToken());
    }
}
