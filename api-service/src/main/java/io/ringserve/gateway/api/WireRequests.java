package io.ringserve.gateway.api;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.List;
import java.util.Map;
import tools.jackson.databind.JsonNode;

/** Request bodies as OpenAI clients send them; unknown fields are ignored. Validated into {@link GenerationRequest}. */
public final class WireRequests {
    private WireRequests() {
    }

    /** {@code POST /v1/chat/completions} body. */
    @JsonIgnoreProperties(ignoreUnknown = true)
    public record ChatCompletionRequest(
            String model,
            List<Message> messages,
            @JsonProperty("max_tokens") Integer maxTokens,
            @JsonProperty("max_completion_tokens") Integer maxCompletionTokens,
            Double temperature,
            @JsonProperty("top_p") Double topP,
            @JsonProperty("top_k") Integer topK,
            @JsonProperty("min_p") Double minP,
            @JsonProperty("presence_penalty") Double presencePenalty,
            @JsonProperty("frequency_penalty") Double frequencyPenalty,
            @JsonProperty("repetition_penalty") Double repetitionPenalty,
            Long seed,
            JsonNode stop,
            Integer n,
            Boolean logprobs,
            @JsonProperty("top_logprobs") Integer topLogprobs,
            Boolean stream,
            @JsonProperty("stream_options") StreamOptions streamOptions,
            String user,
            @JsonProperty("chat_template_kwargs") Map<String, Object> chatTemplateKwargs,
            JsonNode tools,
            @JsonProperty("tool_choice") JsonNode toolChoice,
            @JsonProperty("response_format") JsonNode responseFormat) {
    }

    /** One chat message; content is a string or a list of {@code {"type":"text","text":...}} parts. */
    @JsonIgnoreProperties(ignoreUnknown = true)
    public record Message(String role, JsonNode content, String name,
                          @JsonProperty("tool_call_id") String toolCallId,
                          @JsonProperty("tool_calls") JsonNode toolCalls) {
    }

    /** {@code stream_options}. */
    @JsonIgnoreProperties(ignoreUnknown = true)
    public record StreamOptions(@JsonProperty("include_usage") Boolean includeUsage) {
    }

    /** {@code POST /v1/completions} body. */
    @JsonIgnoreProperties(ignoreUnknown = true)
    public record CompletionRequest(
            String model,
            JsonNode prompt,
            @JsonProperty("max_tokens") Integer maxTokens,
            Double temperature,
            @JsonProperty("top_p") Double topP,
            @JsonProperty("top_k") Integer topK,
            @JsonProperty("min_p") Double minP,
            @JsonProperty("presence_penalty") Double presencePenalty,
            @JsonProperty("frequency_penalty") Double frequencyPenalty,
            @JsonProperty("repetition_penalty") Double repetitionPenalty,
            Long seed,
            JsonNode stop,
            Integer n,
            Integer logprobs,
            Boolean echo,
            String suffix,
            Boolean stream,
            @JsonProperty("stream_options") StreamOptions streamOptions,
            String user) {
    }
}
