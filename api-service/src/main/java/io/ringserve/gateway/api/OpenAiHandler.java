package io.ringserve.gateway.api;

import io.ringserve.gateway.admission.AdmissionQueue;
import io.ringserve.gateway.config.GatewayProperties;
import io.ringserve.gateway.model.ServedModel;
import io.ringserve.gateway.observability.GatewayMetrics;
import io.ringserve.gateway.security.KeyLimiter;
import io.ringserve.gateway.worker.GenerationRun;
import io.ringserve.gateway.worker.WorkerNode;
import io.ringserve.gateway.worker.WorkerPool;
import io.ringserve.protocol.v1.InfoResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import org.springframework.core.io.buffer.DataBufferLimitException;
import org.springframework.core.io.buffer.DataBufferUtils;
import org.springframework.http.HttpStatus;
import org.springframework.http.MediaType;
import org.springframework.web.reactive.function.server.ServerRequest;
import org.springframework.web.reactive.function.server.ServerResponse;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.DatabindException;
import tools.jackson.databind.json.JsonMapper;

/** The OpenAI endpoints: chat completions, completions, models. */
public final class OpenAiHandler {
    // 1.5 for an integer field is an error, not 1
    private static final JsonMapper JSON = JsonMapper.builder()
            .disable(tools.jackson.databind.DeserializationFeature.ACCEPT_FLOAT_AS_INT).build();
    private static final String KEEP_ALIVE = ": keep-alive\n\n";

    private final ServedModel model;
    private final GatewayProperties properties;
    private final RequestValidator validator;
    private final AdmissionQueue admission;
    private final GatewayMetrics metrics;
    private final KeyLimiter limiter;
    private final WorkerPool pool;

    public OpenAiHandler(ServedModel model, GatewayProperties properties, RequestValidator validator,
                         AdmissionQueue admission, GatewayMetrics metrics, KeyLimiter limiter, WorkerPool pool) {
        this.pool = pool;
        this.model = model;
        this.properties = properties;
        this.validator = validator;
        this.admission = admission;
        this.metrics = metrics;
        this.limiter = limiter;
    }

    /** {@code GET /v1/models}. */
    public Mono<ServerResponse> models(ServerRequest request) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", model.id());
        m.put("object", "model");
        m.put("created", 0);
        m.put("owned_by", "ring-serve");
        m.put("max_model_len", pool.contextLength(model.contextLength()));
        InfoResponse served = pool.servedModel();
        if (served != null) {
            // which checkpoint the workers behind this id run (vLLM reports it as "root")
            m.put("root", served.getModelId());
            Map<String, Object> details = new LinkedHashMap<>();
            details.put("architecture", served.getArchitecture());
            details.put("backend", served.getBackend().name().toLowerCase(java.util.Locale.ROOT));
            details.put("workers_ready", pool.nodes().stream().filter(WorkerNode::ready).count());
            details.put("workers_known", pool.nodes().size());
            m.put("ringserve", details);
        }
        return json(HttpStatus.OK, Map.of("object", "list", "data", List.of(m)));
    }

    /** {@code POST /v1/chat/completions}. */
    public Mono<ServerResponse> chat(ServerRequest request) {
        // Mono<byte[]> body → Mono<GenerationRequest> → Mono<ServerResponse>
        return body(request).map(b -> validator.chat(parse(b, WireRequests.ChatCompletionRequest.class)))
                .flatMap(r -> run(request, r))
                .onErrorResume(ApiException.class, OpenAiHandler::error);
    }

    /** {@code POST /v1/completions}. */
    public Mono<ServerResponse> completion(ServerRequest request) {
        return body(request).map(b -> validator.completion(parse(b, WireRequests.CompletionRequest.class)))
                .flatMap(r -> run(request, r))
                .onErrorResume(ApiException.class, OpenAiHandler::error);
    }

    /** Any other path or method under {@code /v1}: 405 on a known path, else 404, with an OpenAI error body. */
    public Mono<ServerResponse> notFound(ServerRequest request) {
        String path = request.path();
        if (path.equals("/v1/chat/completions") || path.equals("/v1/completions") || path.equals("/v1/models")) {
            return error(new ApiException(HttpStatus.METHOD_NOT_ALLOWED, "invalid_request_error",
                    request.method().name() + " is not allowed on " + path, null, "method_not_allowed", null));
        }
        return error(new ApiException(HttpStatus.NOT_FOUND, "invalid_request_error",
                "Unknown request URL: " + request.method().name() + " " + path, null, "unknown_url", null));
    }

    private Mono<byte[]> body(ServerRequest request) {
        MediaType type = request.headers().contentType().orElse(null);
        if (type != null && !type.isCompatibleWith(MediaType.APPLICATION_JSON) && !"json".equals(type.getSubtypeSuffix())) {
            return Mono.error(new ApiException(HttpStatus.UNSUPPORTED_MEDIA_TYPE, "invalid_request_error",
                    "Content-Type must be application/json but was " + type, null, "unsupported_media_type", null));
        }
        long max = properties.limits().maxBodyBytes();
        if (request.headers().contentLength().orElse(-1) > max) {
            return Mono.error(tooLarge(max));
        }
        // Flux<DataBuffer> → Mono<DataBuffer> (bounded join) → Mono<byte[]>
        return DataBufferUtils.join(request.exchange().getRequest().getBody(), (int) Math.min(max, Integer.MAX_VALUE))
                .map(buf -> {
                    byte[] bytes = new byte[buf.readableByteCount()];
                    buf.read(bytes);
                    DataBufferUtils.release(buf);
                    return bytes;
                })
                .onErrorMap(DataBufferLimitException.class, e -> tooLarge(max))
                .switchIfEmpty(Mono.error(() -> ApiException.invalid(null, "request body is required")));
    }

    private static ApiException tooLarge(long max) {
        return new ApiException(HttpStatus.CONTENT_TOO_LARGE, "invalid_request_error",
                "request body exceeds " + max + " bytes", null, "request_too_large", null);
    }

    private static <T> T parse(byte[] body, Class<T> type) {
        try {
            T value = JSON.readValue(body, type);
            if (value == null) {
                throw ApiException.invalid(null, "request body must be a JSON object");
            }
            return value;
        } catch (DatabindException e) {
            String param = e.getPath().stream().map(r -> r.getPropertyName() != null ? r.getPropertyName()
                    : "[" + r.getIndex() + "]").reduce((a, b) -> b.startsWith("[") ? a + b : a + "." + b).orElse(null);
            throw ApiException.invalid(param, param == null ? "request body is not valid JSON for this endpoint"
                    : "invalid value for " + param + ": " + e.getOriginalMessage());
        } catch (JacksonException e) {
            throw ApiException.invalid(null, "request body is not valid JSON: " + e.getOriginalMessage());
        }
    }

    private Mono<ServerResponse> run(ServerRequest http, GenerationRequest r) {
        String key = http.exchange().getAttribute(KeyLimiter.KEY_ATTRIBUTE);
        KeyLimiter.Permit permit = limiter.admit(key, r.promptTokenIds().length + r.maxTokens());
        String id = (r.kind() == GenerationRequest.Kind.CHAT ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "");
        long created = System.currentTimeMillis() / 1000;
        // Mono<Lease> (admission wait; 429/503 still possible) → Flux<WorkerOutput> → Flux<OutputEvent>
        Mono<Flux<OutputEvent>> events = admission.acquire(Set.of()).map(lease -> {
            OutputAssembler assembler = new OutputAssembler(model.tokenizer(), r.stop(),
                    r.promptTokenIds().length, r.splitReasoning());
            return GenerationRun.start(r, lease, admission, metrics, properties.timeouts().firstToken(), properties.maxAttempts())
                    // WorkerOutput → 0..n OutputEvents
                    .concatMapIterable(assembler::accept)
                    // a Done (stop string) cancels upstream, which cancels the gRPC call
                    .takeUntil(e -> e instanceof OutputEvent.Done);
        }).doOnError(e -> permit.release()).doOnCancel(permit::release);
        if (r.stream()) {
            return events.flatMap(flux -> ServerResponse.ok().contentType(MediaType.TEXT_EVENT_STREAM)
                    .header("Cache-Control", "no-cache")
                    .build((exchange, ctx) -> exchange.getResponse().writeAndFlushWith(
                            // Flux<String> frames → Flux<Publisher<DataBuffer>>, one flush per frame
                            sse(flux.doFinally(s -> permit.release()), r, id, created)
                                    .map(s -> Mono.just(exchange.getResponse().bufferFactory()
                                            .wrap(s.getBytes(StandardCharsets.UTF_8)))))));
        }
        // Flux<OutputEvent> → Mono<Map> (aggregate) → Mono<ServerResponse>
        return events.flatMap(flux -> aggregate(flux.doFinally(s -> permit.release()), r, id, created))
                .flatMap(body -> json(HttpStatus.OK, body));
    }

    private Mono<Map<String, Object>> aggregate(Flux<OutputEvent> events, GenerationRequest r, String id, long created) {
        StringBuilder content = new StringBuilder();
        StringBuilder reasoning = new StringBuilder();
        List<Map<String, Object>> logprobs = new ArrayList<>();
        return events.reduce(new OutputEvent[1], (acc, e) -> {
            switch (e) {
                case OutputEvent.Logprobs l -> logprobs.addAll(l.entries());
                case OutputEvent.Content c -> content.append(c.text());
                case OutputEvent.Reasoning t -> reasoning.append(t.text());
                case OutputEvent.Done d -> acc[0] = d;
            }
            return acc;
        }).map(acc -> {
            OutputEvent.Done done = (OutputEvent.Done) acc[0];
            if (done == null) {
                throw ApiException.server("generation ended without a result", "worker_failed");
            }
            Map<String, Object> choice = new LinkedHashMap<>();
            choice.put("index", 0);
            if (r.kind() == GenerationRequest.Kind.CHAT) {
                Map<String, Object> message = new LinkedHashMap<>();
                message.put("role", "assistant");
                message.put("content", content.toString());
                message.put("reasoning_content", reasoning.isEmpty() ? null : reasoning.toString());
                choice.put("message", message);
            } else {
                choice.put("text", reasoning.toString() + content);
            }
            choice.put("logprobs", r.logprobs() ? Map.of("content", logprobs) : null);
            choice.put("finish_reason", done.finishReason());
            Map<String, Object> body = header(r, id, created, false);
            body.put("choices", List.of(choice));
            body.put("usage", usage(done));
            return body;
        });
    }

    private Flux<String> sse(Flux<OutputEvent> events, GenerationRequest r, String id, long created) {
        boolean chat = r.kind() == GenerationRequest.Kind.CHAT;
        Flux<String> first = chat ? Flux.just(frame(chunk(r, id, created, roleDelta(), null)))
                : Flux.empty();
        // log probabilities wait for the next text chunk (or the finish chunk) and travel in it
        List<Map<String, Object>> pendingLogprobs = new ArrayList<>();
        // OutputEvent → SSE frames (finish chunk and optional usage chunk on Done)
        Flux<String> body = events.concatMapIterable(e -> switch (e) {
            case OutputEvent.Logprobs l -> {
                pendingLogprobs.addAll(l.entries());
                yield List.<String>of();
            }
            case OutputEvent.Content c -> List.of(frame(withLogprobs(chat ? chunk(r, id, created, Map.of("content", c.text()), null)
                    : textChunk(r, id, created, c.text(), null), pendingLogprobs)));
            case OutputEvent.Reasoning t -> List.of(frame(withLogprobs(chat
                    ? chunk(r, id, created, Map.of("reasoning_content", t.text()), null)
                    : textChunk(r, id, created, t.text(), null), pendingLogprobs)));
            case OutputEvent.Done d -> {
                List<String> frames = new ArrayList<>();
                frames.add(frame(withLogprobs(chat ? chunk(r, id, created, Map.of(), d.finishReason())
                        : textChunk(r, id, created, "", d.finishReason()), pendingLogprobs)));
                if (r.includeUsage()) {
                    Map<String, Object> u = header(r, id, created, true);
                    u.put("choices", List.of());
                    u.put("usage", usage(d));
                    frames.add(frame(u));
                }
                yield frames;
            }
        });
        Flux<String> frames = Flux.concat(first, body, Flux.just("data: [DONE]\n\n"))
                // a failure after the stream started: one error frame, then [DONE]
                .onErrorResume(e -> {
                    ErrorBody err = e instanceof ApiException a ? a.body()
                            : new ErrorBody(new ErrorBody.Detail("internal error", "server_error", null, "internal_error"));
                    return Flux.just(frame(err), "data: [DONE]\n\n");
                });
        Duration every = properties.timeouts().keepAliveInterval();
        // merge keep-alive comments into the frames until they complete
        return frames.publish(shared -> Flux.merge(shared,
                Flux.interval(every, every).map(i -> KEEP_ALIVE).takeUntilOther(shared.then())));
    }

    /** Moves pending log probabilities into the chunk's choice. */
    @SuppressWarnings("unchecked")
    private static Map<String, Object> withLogprobs(Map<String, Object> chunk, List<Map<String, Object>> pending) {
        if (!pending.isEmpty()) {
            Map<String, Object> choice = ((List<Map<String, Object>>) chunk.get("choices")).getFirst();
            choice.put("logprobs", Map.of("content", List.copyOf(pending)));
            pending.clear();
        }
        return chunk;
    }

    private static Map<String, Object> roleDelta() {
        Map<String, Object> delta = new LinkedHashMap<>();
        delta.put("role", "assistant");
        delta.put("content", "");
        return delta;
    }

    private Map<String, Object> header(GenerationRequest r, String id, long created, boolean chunk) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", id);
        m.put("object", r.kind() == GenerationRequest.Kind.CHAT ? (chunk ? "chat.completion.chunk" : "chat.completion")
                : "text_completion");
        m.put("created", created);
        m.put("model", model.id());
        return m;
    }

    private Map<String, Object> chunk(GenerationRequest r, String id, long created, Map<String, Object> delta, String finish) {
        return streamChunk(r, id, created, "delta", delta, finish);
    }

    private Map<String, Object> textChunk(GenerationRequest r, String id, long created, String text, String finish) {
        return streamChunk(r, id, created, "text", text, finish);
    }

    /** One streamed choice: chat chunks carry a {@code delta}, completion chunks a {@code text}. */
    private Map<String, Object> streamChunk(GenerationRequest r, String id, long created, String key, Object value, String finish) {
        Map<String, Object> choice = new LinkedHashMap<>();
        choice.put("index", 0);
        choice.put(key, value);
        choice.put("logprobs", null);
        choice.put("finish_reason", finish);
        Map<String, Object> m = header(r, id, created, true);
        m.put("choices", List.of(choice));
        return m;
    }

    private static Map<String, Object> usage(OutputEvent.Done d) {
        Map<String, Object> u = new LinkedHashMap<>();
        u.put("prompt_tokens", d.promptTokens());
        u.put("completion_tokens", d.completionTokens());
        u.put("total_tokens", d.promptTokens() + d.completionTokens());
        return u;
    }

    private static String frame(Object body) {
        return "data: " + JSON.writeValueAsString(body) + "\n\n";
    }

    private static Mono<ServerResponse> json(HttpStatus status, Object body) {
        return ServerResponse.status(status).contentType(MediaType.APPLICATION_JSON)
                .bodyValue(JSON.writeValueAsString(body));
    }

    /** The OpenAI error response for a failure before any byte was sent. */
    public static Mono<ServerResponse> error(ApiException e) {
        return error(e, false);
    }

    /** The error response; {@code closeConnection}: also tell the client not to reuse the connection. */
    public static Mono<ServerResponse> error(ApiException e, boolean closeConnection) {
        ServerResponse.BodyBuilder b = ServerResponse.status(e.status()).contentType(MediaType.APPLICATION_JSON);
        if (closeConnection) {
            b.header("Connection", "close");
        }
        if (e.retryAfterSeconds() != null) {
            b.header("Retry-After", Long.toString(e.retryAfterSeconds()));
        }
        return b.bodyValue(JSON.writeValueAsString(e.body()));
    }
}
