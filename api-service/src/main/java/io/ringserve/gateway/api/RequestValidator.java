package io.ringserve.gateway.api;

import io.ringserve.gateway.config.GatewayProperties;
import io.ringserve.gateway.model.ServedModel;
import io.ringserve.model.template.TemplateException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.IntSupplier;
import org.springframework.http.HttpStatus;
import tools.jackson.databind.JsonNode;

/** Checks wire requests, renders the chat template, tokenizes, and checks the context budget. */
public final class RequestValidator {
    private static final Set<String> ROLES = Set.of("system", "developer", "user", "assistant", "tool");
    private static final int MAX_STOP = 16;

    private final ServedModel model;
    private final GatewayProperties properties;
    private final IntSupplier contextLength;

    /**
     * @param contextLength the context length the workers report, or the model's when none has reported
     */
    public RequestValidator(ServedModel model, GatewayProperties properties, IntSupplier contextLength) {
        this.model = model;
        this.properties = properties;
        this.contextLength = contextLength;
    }

    /** Validates a chat request. */
    public GenerationRequest chat(WireRequests.ChatCompletionRequest r) {
        checkModel(r.model());
        if (r.tools() != null && !r.tools().isNull() && !(r.tools().isArray() && r.tools().isEmpty())) {
            throw ApiException.unsupported("tools", "tools (function calling) are not supported by this server");
        }
        if (r.toolChoice() != null && !r.toolChoice().isNull()
                && !(r.toolChoice().isString() && r.toolChoice().asString().equals("none"))) {
            throw ApiException.unsupported("tool_choice", "tool_choice is not supported by this server");
        }
        if (r.responseFormat() != null && !r.responseFormat().isNull()) {
            JsonNode type = r.responseFormat().get("type");
            if (type == null || !type.isString() || !type.asString().equals("text")) {
                throw ApiException.unsupported("response_format", "response_format other than {\"type\":\"text\"} is not supported");
            }
        }
        if (r.messages() == null || r.messages().isEmpty()) {
            throw ApiException.invalid("messages", "messages must be a non-empty list");
        }
        List<Map<String, Object>> messages = new ArrayList<>();
        for (int i = 0; i < r.messages().size(); i++) {
            WireRequests.Message m = r.messages().get(i);
            String param = "messages[" + i + "]";
            if (m == null) {
                throw ApiException.invalid(param, param + " must be an object");
            }
            if (m.role() == null || !ROLES.contains(m.role())) {
                throw ApiException.invalid(param + ".role", param + ".role must be one of " + ROLES + " but was " + m.role());
            }
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("role", m.role().equals("developer") ? "system" : m.role());
            out.put("content", content(m.content(), param + ".content", m.role()));
            messages.add(out);
        }
        Integer max = r.maxCompletionTokens() != null ? r.maxCompletionTokens() : r.maxTokens();
        String maxParam = r.maxCompletionTokens() != null ? "max_completion_tokens" : "max_tokens";
        checkN(r.n());
        boolean logprobs = Boolean.TRUE.equals(r.logprobs());
        int top = r.topLogprobs() == null ? 0 : r.topLogprobs();
        if (top < 0 || top > 20) {
            throw ApiException.invalid("top_logprobs", "top_logprobs must be in [0, 20] but was " + top);
        }
        if (top > 0 && !logprobs) {
            throw ApiException.invalid("top_logprobs", "top_logprobs requires logprobs to be true");
        }
        Map<String, Object> kwargs = r.chatTemplateKwargs() == null ? Map.of() : r.chatTemplateKwargs();
        String prompt;
        try {
            prompt = model.renderChat(messages, kwargs);
        } catch (TemplateException e) {
            throw ApiException.invalid("messages", "the chat template rejected the messages: " + e.getMessage());
        }
        int[] ids = model.tokenizer().encode(prompt);
        boolean stream = Boolean.TRUE.equals(r.stream());
        if (r.streamOptions() != null && !stream) {
            throw ApiException.invalid("stream_options", "stream_options is only allowed when stream is true");
        }
        boolean includeUsage = r.streamOptions() != null && Boolean.TRUE.equals(r.streamOptions().includeUsage());
        return new GenerationRequest(GenerationRequest.Kind.CHAT, ids,
                sampling(r.temperature(), r.topP(), r.topK(), r.minP(), r.presencePenalty(), r.frequencyPenalty(),
                        r.repetitionPenalty(), r.seed()),
                maxTokens(ids.length, max, maxParam), stop(r.stop()), stream, includeUsage, logprobs, top, true);
    }

    /** Validates a text completion request (the prompt is tokenized as is, no template). */
    public GenerationRequest completion(WireRequests.CompletionRequest r) {
        checkModel(r.model());
        checkN(r.n());
        if (Boolean.TRUE.equals(r.echo())) {
            throw ApiException.unsupported("echo", "echo is not supported");
        }
        if (r.suffix() != null) {
            throw ApiException.unsupported("suffix", "suffix is not supported");
        }
        if (r.logprobs() != null && r.logprobs() != 0) {
            throw ApiException.unsupported("logprobs", "logprobs is not supported on /v1/completions");
        }
        JsonNode p = r.prompt();
        String prompt;
        if (p != null && p.isString()) {
            prompt = p.asString();
        } else if (p != null && p.isArray() && p.size() == 1 && p.get(0).isString()) {
            prompt = p.get(0).asString();
        } else {
            throw ApiException.invalid("prompt", "prompt must be a string or a list of one string");
        }
        if (prompt.isEmpty()) {
            throw ApiException.invalid("prompt", "prompt must not be empty");
        }
        int[] ids = model.tokenizer().encode(prompt);
        boolean stream = Boolean.TRUE.equals(r.stream());
        boolean includeUsage = r.streamOptions() != null && Boolean.TRUE.equals(r.streamOptions().includeUsage());
        return new GenerationRequest(GenerationRequest.Kind.COMPLETION, ids,
                sampling(r.temperature(), r.topP(), r.topK(), r.minP(), r.presencePenalty(), r.frequencyPenalty(),
                        r.repetitionPenalty(), r.seed()),
                maxTokens(ids.length, r.maxTokens(), "max_tokens"), stop(r.stop()), stream, includeUsage, false, 0, false);
    }

    private void checkModel(String id) {
        if (id == null || id.isBlank()) {
            throw ApiException.invalid("model", "model is required");
        }
        if (!id.equals(model.id())) {
            throw new ApiException(HttpStatus.NOT_FOUND, "invalid_request_error",
                    "The model `" + id + "` does not exist", "model", "model_not_found", null);
        }
    }

    private static void checkN(Integer n) {
        if (n != null && n != 1) {
            throw ApiException.unsupported("n", "only n=1 is supported but n was " + n);
        }
    }

    private static String content(JsonNode content, String param, String role) {
        if (content == null || content.isNull()) {
            if (role.equals("assistant")) {
                return "";
            }
            throw ApiException.invalid(param, param + " is required");
        }
        if (content.isString()) {
            return content.asString();
        }
        if (content.isArray()) {
            StringBuilder text = new StringBuilder();
            for (int i = 0; i < content.size(); i++) {
                JsonNode part = content.get(i);
                JsonNode type = part.get("type");
                if (type == null || !type.isString() || !type.asString().equals("text")) {
                    throw ApiException.unsupported(param + "[" + i + "].type", "only text content parts are supported");
                }
                JsonNode t = part.get("text");
                if (t == null || !t.isString()) {
                    throw ApiException.invalid(param + "[" + i + "].text", param + "[" + i + "].text must be a string");
                }
                text.append(t.asString());
            }
            return text.toString();
        }
        throw ApiException.invalid(param, param + " must be a string or a list of text parts");
    }

    private static GenerationRequest.Sampling sampling(Double temperature, Double topP, Integer topK, Double minP,
                                                       Double presence, Double frequency, Double repetition, Long seed) {
        double t = range("temperature", temperature, 1.0, 0, 2);
        double p = range("top_p", topP, 1.0, 0, 1);
        if (topP != null && topP <= 0) {
            throw ApiException.invalid("top_p", "top_p must be in (0, 1] but was " + topP);
        }
        int k = topK == null ? 0 : topK;
        if (k < -1) {
            throw ApiException.invalid("top_k", "top_k must be -1 (off), 0 (off) or positive but was " + k);
        }
        double mp = range("min_p", minP, 0, 0, 1);
        double pp = range("presence_penalty", presence, 0, -2, 2);
        double fp = range("frequency_penalty", frequency, 0, -2, 2);
        double rp = range("repetition_penalty", repetition, 1, 0, 10);
        if (repetition != null && repetition <= 0) {
            throw ApiException.invalid("repetition_penalty", "repetition_penalty must be > 0 but was " + repetition);
        }
        if (seed != null && seed < 0) {
            throw ApiException.invalid("seed", "seed must be non-negative but was " + seed);
        }
        return new GenerationRequest.Sampling(t, p, Math.max(k, 0), mp, pp, fp, rp, seed);
    }

    private static double range(String param, Double value, double dflt, double min, double max) {
        if (value == null) {
            return dflt;
        }
        if (value.isNaN() || value < min || value > max) {
            throw ApiException.invalid(param, param + " must be in [" + fmt(min) + ", " + fmt(max) + "] but was " + value);
        }
        return value;
    }

    private static String fmt(double v) {
        return v == Math.rint(v) ? Long.toString((long) v) : Double.toString(v);
    }

    private static List<String> stop(JsonNode stop) {
        if (stop == null || stop.isNull()) {
            return List.of();
        }
        List<String> out = new ArrayList<>();
        if (stop.isString()) {
            out.add(stop.asString());
        } else if (stop.isArray()) {
            for (JsonNode s : stop) {
                if (!s.isString()) {
                    throw ApiException.invalid("stop", "stop must be a string or a list of strings");
                }
                out.add(s.asString());
            }
        } else {
            throw ApiException.invalid("stop", "stop must be a string or a list of strings");
        }
        if (out.size() > MAX_STOP) {
            throw ApiException.invalid("stop", "at most " + MAX_STOP + " stop strings are allowed");
        }
        if (out.stream().anyMatch(String::isEmpty)) {
            throw ApiException.invalid("stop", "stop strings must not be empty");
        }
        return out;
    }

    private int maxTokens(int promptTokens, Integer requested, String param) {
        int context = contextLength.getAsInt();
        if (requested != null && requested < 1) {
            throw ApiException.invalid(param, param + " must be at least 1 but was " + requested);
        }
        if (promptTokens >= context) {
            throw ApiException.invalid("messages", "This model's maximum context length is " + context
                    + " tokens, but the prompt has " + promptTokens + " tokens");
        }
        if (requested == null) {
            return Math.min(context - promptTokens, properties.limits().defaultMaxTokens());
        }
        if (promptTokens + requested > context) {
            throw ApiException.invalid(param, "This model's maximum context length is " + context + " tokens. However, you requested "
                    + (promptTokens + requested) + " tokens (" + promptTokens + " in the prompt, " + requested
                    + " for the completion). Please reduce the prompt or " + param + ".");
        }
        return requested;
    }
}
