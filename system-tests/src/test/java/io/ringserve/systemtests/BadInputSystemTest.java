package io.ringserve.systemtests;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A battery of bad requests against the shared cluster: each must get a 4xx with an OpenAI-style
 * {@code {"error":{"message","type","param","code"}}} body, and afterwards the service must be ready and serve
 * a normal request.
 */
@Timeout(120)
class BadInputSystemTest {
    private static final String M = "\"model\":\"" + Cluster.MODEL_ID + "\"";
    private static final String MSG = "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]";
    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();
    /**
     * Rejected by the HTTP server's request decoder before any application code runs: the status is right
     * (431) but the body is empty, not an OpenAI error body.
     */
    private static final java.util.Set<String> DECODER_LEVEL = java.util.Set.of("huge header", "many headers");
    private static final Map<Integer, Integer> STATUSES = new java.util.concurrent.ConcurrentSkipListMap<>();

    /** One bad request: where, what body, which headers, and the status and param expected (null: any). */
    record Case(String name, String path, byte[] body, Map<String, String> headers, int status, String param) {
        @Override
        public String toString() {
            return name;
        }
    }

    private static Case chat(String name, String json, int status, String param) {
        return new Case(name, "/v1/chat/completions", json.getBytes(StandardCharsets.UTF_8), Map.of(), status, param);
    }

    private static Case completion(String name, String json, int status, String param) {
        return new Case(name, "/v1/completions", json.getBytes(StandardCharsets.UTF_8), Map.of(), status, param);
    }

    private static Case raw(String name, byte[] body, Map<String, String> headers, int status) {
        return new Case(name, "/v1/chat/completions", body, headers, status, null);
    }

    static Stream<Arguments> cases() {
        List<Case> c = new ArrayList<>();
        // malformed JSON
        c.add(chat("empty body", "", 400, null));
        c.add(chat("not JSON", "hello", 400, null));
        c.add(chat("truncated JSON", "{" + M + "," + MSG.substring(0, 20), 400, null));
        c.add(chat("JSON array", "[1,2,3]", 400, null));
        c.add(chat("JSON string", "\"chat\"", 400, null));
        c.add(chat("JSON null", "null", 400, null));
        c.add(chat("trailing garbage", "{" + M + "," + MSG + "}}}", 400, null));
        c.add(chat("single quotes", "{'model':'x'}", 400, null));
        c.add(chat("deep nesting", "{\"x\":" + "[".repeat(5000) + "]".repeat(5000) + "," + M + "," + MSG + "}", 400, null));
        // missing and wrong types
        c.add(chat("no model", "{" + MSG + "}", 400, "model"));
        c.add(chat("no messages", "{" + M + "}", 400, "messages"));
        c.add(chat("empty messages", "{" + M + ",\"messages\":[]}", 400, "messages"));
        c.add(chat("messages is a string", "{" + M + ",\"messages\":\"hi\"}", 400, "messages"));
        c.add(chat("message without role", "{" + M + ",\"messages\":[{\"content\":\"hi\"}]}", 400, null));
        c.add(chat("unknown role", "{" + M + ",\"messages\":[{\"role\":\"wizard\",\"content\":\"hi\"}]}", 400, null));
        c.add(chat("content is a number", "{" + M + ",\"messages\":[{\"role\":\"user\",\"content\":5}]}", 400, null));
        c.add(chat("content is an object", "{" + M + ",\"messages\":[{\"role\":\"user\",\"content\":{}}]}", 400, null));
        c.add(chat("image part", "{" + M + ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]}", 400, null));
        c.add(chat("model is a number", "{\"model\":5," + MSG + "}", 404, "model"));
        c.add(chat("temperature is a string", "{" + M + "," + MSG + ",\"temperature\":\"hot\"}", 400, "temperature"));
        c.add(chat("max_tokens is a string", "{" + M + "," + MSG + ",\"max_tokens\":\"many\"}", 400, "max_tokens"));
        c.add(chat("max_tokens is fractional", "{" + M + "," + MSG + ",\"max_tokens\":1.5}", 400, "max_tokens"));
        c.add(chat("stream is a string", "{" + M + "," + MSG + ",\"stream\":\"yes\"}", 400, "stream"));
        c.add(chat("stop is a number", "{" + M + "," + MSG + ",\"stop\":5}", 400, "stop"));
        c.add(chat("stop list with a number", "{" + M + "," + MSG + ",\"stop\":[\"a\",5]}", 400, "stop"));
        c.add(chat("empty stop string", "{" + M + "," + MSG + ",\"stop\":[\"\"]}", 400, "stop"));
        c.add(chat("seed is a string", "{" + M + "," + MSG + ",\"seed\":\"x\"}", 400, "seed"));
        // huge numbers (out of the field's range: the parser rejects them before it binds a field, so no param)
        c.add(chat("max_tokens beyond int", "{" + M + "," + MSG + ",\"max_tokens\":99999999999999999999}", 400, null));
        c.add(chat("max_tokens beyond the context", "{" + M + "," + MSG + ",\"max_tokens\":100000}", 400, "max_tokens"));
        c.add(chat("max_completion_tokens beyond the context", "{" + M + "," + MSG + ",\"max_completion_tokens\":2000000000}", 400, "max_completion_tokens"));
        c.add(chat("temperature 1e308", "{" + M + "," + MSG + ",\"temperature\":1e308}", 400, "temperature"));
        c.add(chat("temperature 1e400", "{" + M + "," + MSG + ",\"temperature\":1e400}", 400, "temperature"));
        c.add(chat("seed beyond long", "{" + M + "," + MSG + ",\"seed\":123456789012345678901234567890}", 400, null));
        c.add(chat("top_k huge", "{" + M + "," + MSG + ",\"top_k\":99999999999}", 400, null));
        // negative and NaN sampling values
        c.add(chat("negative temperature", "{" + M + "," + MSG + ",\"temperature\":-0.5}", 400, "temperature"));
        c.add(chat("temperature above 2", "{" + M + "," + MSG + ",\"temperature\":2.5}", 400, "temperature"));
        c.add(chat("NaN temperature", "{" + M + "," + MSG + ",\"temperature\":NaN}", 400, null));
        c.add(chat("NaN temperature as string", "{" + M + "," + MSG + ",\"temperature\":\"NaN\"}", 400, "temperature"));
        c.add(chat("Infinity top_p", "{" + M + "," + MSG + ",\"top_p\":Infinity}", 400, null));
        c.add(chat("top_p 0", "{" + M + "," + MSG + ",\"top_p\":0}", 400, "top_p"));
        c.add(chat("top_p above 1", "{" + M + "," + MSG + ",\"top_p\":1.5}", 400, "top_p"));
        c.add(chat("negative top_k", "{" + M + "," + MSG + ",\"top_k\":-5}", 400, "top_k"));
        c.add(chat("negative min_p", "{" + M + "," + MSG + ",\"min_p\":-0.1}", 400, "min_p"));
        c.add(chat("presence_penalty -3", "{" + M + "," + MSG + ",\"presence_penalty\":-3}", 400, "presence_penalty"));
        c.add(chat("frequency_penalty 3", "{" + M + "," + MSG + ",\"frequency_penalty\":3}", 400, "frequency_penalty"));
        c.add(chat("repetition_penalty 0", "{" + M + "," + MSG + ",\"repetition_penalty\":0}", 400, "repetition_penalty"));
        c.add(chat("negative seed", "{" + M + "," + MSG + ",\"seed\":-1}", 400, "seed"));
        c.add(chat("max_tokens 0", "{" + M + "," + MSG + ",\"max_tokens\":0}", 400, "max_tokens"));
        c.add(chat("negative max_tokens", "{" + M + "," + MSG + ",\"max_tokens\":-1}", 400, "max_tokens"));
        c.add(chat("n 2", "{" + M + "," + MSG + ",\"n\":2}", 400, "n"));
        c.add(chat("top_logprobs 100", "{" + M + "," + MSG + ",\"logprobs\":true,\"top_logprobs\":100}", 400, "top_logprobs"));
        c.add(chat("tools", "{" + M + "," + MSG + ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}", 400, "tools"));
        // unknown model
        c.add(chat("unknown model", "{\"model\":\"gpt-4o\"," + MSG + "}", 404, "model"));
        c.add(chat("blank model", "{\"model\":\"  \"," + MSG + "}", 400, "model"));
        c.add(completion("unknown model (completions)", "{\"model\":\"nope\",\"prompt\":\"hi\"}", 404, "model"));
        // empty and enormous messages
        c.add(completion("empty prompt", "{" + M + ",\"prompt\":\"\"}", 400, "prompt"));
        c.add(completion("prompt is a number", "{" + M + ",\"prompt\":5}", 400, "prompt"));
        c.add(completion("prompt list of two", "{" + M + ",\"prompt\":[\"a\",\"b\"]}", 400, "prompt"));
        c.add(completion("token-id prompt", "{" + M + ",\"prompt\":[1,2,3]}", 400, "prompt"));
        c.add(completion("echo", "{" + M + ",\"prompt\":\"hi\",\"echo\":true}", 400, "echo"));
        c.add(chat("prompt beyond the context", "{" + M + ",\"messages\":[{\"role\":\"user\",\"content\":"
                + Json.quote("ring ".repeat(3000)) + "}]}", 400, "messages"));
        c.add(completion("prompt beyond the context (completions)", "{" + M + ",\"prompt\":" + Json.quote("ring ".repeat(3000)) + "}", 400, null));
        c.add(chat("body over 1 MiB", "{" + M + ",\"messages\":[{\"role\":\"user\",\"content\":"
                + Json.quote("x".repeat(1_100_000)) + "}]}", 413, null));
        c.add(chat("10 MB of padding", "{" + M + "," + MSG + ",\"pad\":" + Json.quote("y".repeat(10_000_000)) + "}", 413, null));
        // invalid UTF-8
        byte[] bad = ("{" + M + ",\"messages\":[{\"role\":\"user\",\"content\":\"X\"}]}").getBytes(StandardCharsets.UTF_8);
        byte[] b1 = bad.clone();
        int at = new String(bad, StandardCharsets.ISO_8859_1).indexOf("\"X\"") + 1;
        b1[at] = (byte) 0xC3; // a lead byte without its continuation
        c.add(raw("invalid UTF-8 in content", b1, Map.of(), 400));
        byte[] b2 = bad.clone();
        b2[at] = (byte) 0xFF;
        c.add(raw("0xFF byte in content", b2, Map.of(), 400));
        byte[] b3 = bad.clone();
        b3[2] = (byte) 0xED; // inside the key "model"
        c.add(raw("invalid UTF-8 in a key", b3, Map.of(), 400));
        // API key
        String ok = "{" + M + "," + MSG + "}";
        c.add(new Case("no API key", "/v1/chat/completions", ok.getBytes(StandardCharsets.UTF_8), Map.of("Authorization", ""), 401, null));
        c.add(new Case("wrong API key", "/v1/chat/completions", ok.getBytes(StandardCharsets.UTF_8), Map.of("Authorization", "Bearer sk-nope"), 401, null));
        c.add(new Case("Basic auth", "/v1/chat/completions", ok.getBytes(StandardCharsets.UTF_8), Map.of("Authorization", "Basic dXNlcjpwYXNz"), 401, null));
        c.add(new Case("empty bearer", "/v1/chat/completions", ok.getBytes(StandardCharsets.UTF_8), Map.of("Authorization", "Bearer "), 401, null));
        c.add(new Case("huge bearer", "/v1/chat/completions", ok.getBytes(StandardCharsets.UTF_8), Map.of("Authorization", "Bearer " + "k".repeat(6000)), 401, null));
        c.add(new Case("models without key", "/v1/models", null, Map.of("Authorization", ""), 401, null));
        // header abuse
        c.add(new Case("huge header", "/v1/chat/completions", ok.getBytes(StandardCharsets.UTF_8), Map.of("X-Junk", "j".repeat(20_000)), 431, null));
        c.add(new Case("many headers", "/v1/chat/completions", ok.getBytes(StandardCharsets.UTF_8), manyHeaders(), 431, null));
        c.add(new Case("text/plain content type", "/v1/chat/completions", ok.getBytes(StandardCharsets.UTF_8), Map.of("Content-Type", "text/plain"), 415, null));
        c.add(new Case("form content type", "/v1/chat/completions", "model=x".getBytes(StandardCharsets.UTF_8), Map.of("Content-Type", "application/x-www-form-urlencoded"), 415, null));
        c.add(new Case("GET on chat completions", "/v1/chat/completions", null, Map.of(), 405, null));
        c.add(new Case("unknown endpoint", "/v1/embeddings", ok.getBytes(StandardCharsets.UTF_8), Map.of(), 404, null));
        return c.stream().map(Arguments::of);
    }

    private static Map<String, String> manyHeaders() {
        Map<String, String> h = new LinkedHashMap<>();
        for (int i = 0; i < 400; i++) {
            h.put("X-Many-" + i, "v".repeat(40));
        }
        return h;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void answersWithAnOpenAiStyle4xx(Case c) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(Cluster.shared().api(c.path())).timeout(Duration.ofSeconds(30));
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put("Authorization", "Bearer " + Cluster.API_KEY);
        headers.put("Content-Type", "application/json");
        headers.putAll(c.headers());
        headers.forEach((k, v) -> {
            if (!v.isEmpty()) {
                b.header(k, v);
            }
        });
        b.method(c.body() == null ? "GET" : "POST", c.body() == null ? HttpRequest.BodyPublishers.noBody()
                : HttpRequest.BodyPublishers.ofByteArray(c.body()));
        HttpResponse<String> r = HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
        STATUSES.merge(r.statusCode(), 1, Integer::sum);
        String what = c.name() + ": " + r.statusCode() + " " + r.body().substring(0, Math.min(300, r.body().length()));
        assertTrue(r.statusCode() == c.status(), "expected " + c.status() + " for " + what);
        if (DECODER_LEVEL.contains(c.name())) {
            return;
        }
        JsonNode body = Json.parse(r.body());
        assertTrue(body != null && body.path("error").isObject(), "not an OpenAI error body: " + what);
        JsonNode e = body.get("error");
        assertTrue(e.path("message").isTextual() && !e.path("message").asText().isBlank(), "message: " + what);
        assertTrue(e.path("type").isTextual(), "type: " + what);
        assertTrue(e.has("param") && e.has("code"), "param and code present (may be null): " + what);
        if (c.param() != null) {
            assertTrue(c.param().equals(e.path("param").asText(null)), "param " + c.param() + ": " + what);
        }
    }

    @AfterAll
    static void serviceIsHealthyAfterwards() throws Exception {
        Cluster cluster = Cluster.shared();
        assertTrue(cluster.gatewayReady(), cluster.readinessBody());
        cluster.assertServes();
        Figures.record("bad input", Map.of("cases", cases().count(), "statuses", STATUSES,
                "readinessAfter", "UP", "normalRequestAfter", "200"));
    }
}
