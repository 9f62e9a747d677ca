package io.ringserve.gateway;

import io.ringserve.protocol.v1.GenerateRequest;

import static org.assertj.core.api.Assertions.assertThat;

import io.ringserve.model.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.webtestclient.autoconfigure.AutoConfigureWebTestClient;
import org.springframework.context.annotation.Import;
import org.springframework.http.MediaType;
import org.springframework.test.web.reactive.server.WebTestClient;

@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT)
@AutoConfigureWebTestClient
@Import(GatewayTestWorkers.class)
class GatewayApiTests {
    static final Tokenizer TOKENIZER = Tokenizer.fromDirectory(Path.of("src/test/resources/model"));

    /** Reasoning, the end tag, then an answer with CJK characters whose UTF-8 bytes span several tokens. */
    static final String TEXT = "plan\n</think>\n\nHi 世界 END tail";

    @Autowired
    WebTestClient client;

    @Test
    void scriptSplitsTagsAndCharactersAcrossTokens() {
        assertThat(TOKENIZER.encode("</think>").length).isGreaterThan(1);
        for (int id : TOKENIZER.encode("世")) {
            assertThat(TOKENIZER.decode(new int[] {id}, false)).doesNotContain("世");
        }
    }

    @BeforeEach
    void reset() {
        GatewayTestWorkers.script(TOKENIZER.encode(TEXT), 0);
        FakeWorker.FAIL_BEFORE_FIRST.set(0);
        FakeWorker.HOLD.set(0);
        FakeWorker.FAIL_AFTER.set(0);
        FakeWorker.failAfterTokens = 0;
        FakeWorker.extraWaiting = 0;
        FakeWorker.cancelled = new CountDownLatch(1);
    }

    WebTestClient.RequestHeadersSpec<?> post(String body) {
        return client.mutate().responseTimeout(Duration.ofSeconds(10)).build()
                .post().uri("/v1/chat/completions").header("Authorization", "Bearer sk-test")
                .contentType(MediaType.APPLICATION_JSON).bodyValue(body);
    }

    @Test
    void nonStreamingSplitsReasoningAndContent() {
        post("""
                {"model":"tiny-ring","messages":[{"role":"user","content":"hi"}],"max_tokens":100}""")
                .exchange().expectStatus().isOk().expectBody()
                .jsonPath("$.object").isEqualTo("chat.completion")
                .jsonPath("$.choices[0].message.reasoning_content").isEqualTo("plan\n")
                .jsonPath("$.choices[0].message.content").isEqualTo("Hi 世界 END tail")
                .jsonPath("$.choices[0].finish_reason").isEqualTo("stop")
                .jsonPath("$.usage.completion_tokens").isEqualTo(TOKENIZER.encode(TEXT).length)
                .jsonPath("$.usage.prompt_tokens").isNumber();
    }

    @Test
    void streamingChunkSequenceWithUsage() {
        List<String> frames = stream("""
                {"model":"tiny-ring","messages":[{"role":"user","content":"hi"}],"stream":true,
                 "stream_options":{"include_usage":true}}""");
        assertThat(frames.getFirst()).contains("\"delta\":{\"role\":\"assistant\"");
        assertThat(frames.getLast()).isEqualTo("[DONE]");
        String usage = frames.get(frames.size() - 2);
        assertThat(usage).contains("\"choices\":[]").contains("\"usage\"");
        assertThat(frames.get(frames.size() - 3)).contains("\"finish_reason\":\"stop\"");
        StringBuilder reasoning = new StringBuilder();
        StringBuilder content = new StringBuilder();
        for (String f : frames.subList(1, frames.size() - 3)) {
            assertThat(f).contains("\"finish_reason\":null");
            reasoning.append(field(f, "reasoning_content"));
            content.append(field(f, "content"));
            assertThat(f).doesNotContain("\uFFFD");
        }
        assertThat(reasoning.toString()).isEqualTo("plan\n");
        assertThat(content.toString()).isEqualTo("Hi 世界 END tail");
    }

    @Test
    void noUsageChunkWithoutIncludeUsage() {
        List<String> frames = stream("""
                {"model":"tiny-ring","messages":[{"role":"user","content":"hi"}],"stream":true}""");
        assertThat(frames).noneMatch(f -> f.contains("\"usage\""));
        assertThat(frames.get(frames.size() - 2)).contains("\"finish_reason\":\"stop\"");
    }

    @Test
    void stopStringAcrossTokensEndsOutputAndCancelsWorker() throws Exception {
        GatewayTestWorkers.script(TOKENIZER.encode("r</think>Hi 世界 END " + "x ".repeat(100)), 20);
        post("""
                {"model":"tiny-ring","messages":[{"role":"user","content":"hi"}],"stop":["D x"," EN"],"max_tokens":300}""")
                .exchange().expectStatus().isOk().expectBody()
                .jsonPath("$.choices[0].message.content").isEqualTo("Hi 世界")
                .jsonPath("$.choices[0].finish_reason").isEqualTo("stop");
        assertThat(FakeWorker.cancelled.await(2, TimeUnit.SECONDS)).isTrue();
    }

    @Test
    void lengthFinishKeepsWhatWasProduced() {
        post("""
                {"model":"tiny-ring","messages":[{"role":"user","content":"hi"}],"max_tokens":2}""")
                .exchange().expectStatus().isOk().expectBody()
                .jsonPath("$.choices[0].finish_reason").isEqualTo("length")
                .jsonPath("$.choices[0].message.reasoning_content").isNotEmpty();
    }

    @Test
    void validationErrorsNameTheParameter() {
        for (String[] c : new String[][] {
                {"\"temperature\":5", "temperature"}, {"\"top_p\":0", "top_p"}, {"\"n\":2", "n"},
                {"\"max_tokens\":0", "max_tokens"}, {"\"stop\":5", "stop"}, {"\"temperature\":\"hot\"", "temperature"},
                {"\"tools\":[{\"type\":\"function\"}]", "tools"}, {"\"max_tokens\":100000", "max_tokens"}}) {
            post("{\"model\":\"tiny-ring\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]," + c[0] + "}")
                    .exchange().expectStatus().isBadRequest().expectBody()
                    .jsonPath("$.error.type").isEqualTo("invalid_request_error")
                    .jsonPath("$.error.param").isEqualTo(c[1]);
        }
        post("{\"model\":\"nope\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}")
                .exchange().expectStatus().isNotFound().expectBody().jsonPath("$.error.code").isEqualTo("model_not_found");
    }

    @Test
    void missingOrWrongKeyIs401() {
        client.get().uri("/v1/models").exchange().expectStatus().isUnauthorized()
                .expectBody().jsonPath("$.error.code").isEqualTo("invalid_api_key");
        client.get().uri("/v1/models").header("Authorization", "Bearer wrong").exchange().expectStatus().isUnauthorized();
        client.get().uri("/v1/models").header("Authorization", "Bearer sk-test").exchange().expectStatus().isOk()
                .expectBody().jsonPath("$.data[0].id").isEqualTo("tiny-ring")
                // which model the workers behind the id serve, from their Info
                .jsonPath("$.data[0].root").isEqualTo("tiny-ring")
                .jsonPath("$.data[0].ringserve.architecture").isEqualTo("BailingMoeV2ForCausalLM")
                .jsonPath("$.data[0].ringserve.workers_known").isEqualTo(2);
    }

    @Test
    void retriesOnAnotherWorkerBeforeTheFirstToken() {
        int before = GatewayTestWorkers.W1.calls.get() + GatewayTestWorkers.W2.calls.get();
        FakeWorker.FAIL_BEFORE_FIRST.set(1);
        post("""
                {"model":"tiny-ring","messages":[{"role":"user","content":"hi"}]}""")
                .exchange().expectStatus().isOk().expectBody()
                .jsonPath("$.choices[0].message.content").isEqualTo("Hi 世界 END tail");
        assertThat(GatewayTestWorkers.W1.calls.get() + GatewayTestWorkers.W2.calls.get() - before).isEqualTo(2);
    }

    @Autowired
    io.github.resilience4j.circuitbreaker.CircuitBreakerRegistry breakers;

    @Test
    void openCircuitTakesWorkerOutOfRotation() {
        var breaker = breakers.circuitBreaker("worker-w1:1");
        breaker.transitionToForcedOpenState();
        try {
            int before = GatewayTestWorkers.W1.calls.get();
            for (int i = 0; i < 3; i++) {
                post("""
                        {"model":"tiny-ring","messages":[{"role":"user","content":"hi"}]}""")
                        .exchange().expectStatus().isOk();
            }
            assertThat(GatewayTestWorkers.W1.calls.get()).isEqualTo(before);
        } finally {
            breaker.transitionToClosedState();
        }
    }

    @Test
    void silentWorkerIsAbandonedAfterTheFirstTokenTimeout() throws Exception {
        FakeWorker.HOLD.set(1);
        post("""
                {"model":"tiny-ring","messages":[{"role":"user","content":"hi"}]}""")
                .exchange().expectStatus().isOk().expectBody()
                .jsonPath("$.choices[0].message.content").isEqualTo("Hi 世界 END tail");
        assertThat(FakeWorker.cancelled.await(1, TimeUnit.SECONDS)).isTrue();
    }

    @Test
    void midStreamFailureReplaysOnAnotherWorkerAndContinues() {
        FakeWorker.failAfterTokens = 5;
        FakeWorker.FAIL_AFTER.set(1);
        List<String> frames = stream("""
                {"model":"tiny-ring","messages":[{"role":"user","content":"hi"}],"stream":true,"seed":7,
                 "stream_options":{"include_usage":true}}""");
        StringBuilder reasoning = new StringBuilder();
        StringBuilder content = new StringBuilder();
        frames.stream().filter(f -> !f.equals("[DONE]")).forEach(f -> {
            reasoning.append(field(f, "reasoning_content"));
            content.append(field(f, "content"));
        });
        assertThat(reasoning.toString()).isEqualTo("plan\n");
        assertThat(content.toString()).isEqualTo("Hi 世界 END tail");
        assertThat(frames.get(frames.size() - 2)).contains("\"completion_tokens\":" + TOKENIZER.encode(TEXT).length);
        assertThat(frames.getLast()).isEqualTo("[DONE]");
        // the second attempt told its worker which prompt tail is output already sent, with the same seed
        GenerateRequest replay = java.util.stream.Stream.of(GatewayTestWorkers.W1.last, GatewayTestWorkers.W2.last)
                .filter(java.util.Objects::nonNull).filter(g -> g.getReplayedTokens() > 0).findFirst().orElseThrow();
        assertThat(replay.getReplayedTokens()).isEqualTo(5);
        assertThat(replay.getSampling().getSeed()).isEqualTo(7L);
    }

    @Test
    void failureAfterStreamingStartedEndsWithErrorEventAndDone() {
        FakeWorker.failAfterTokens = 3;
        FakeWorker.FAIL_AFTER.set(10);
        List<String> frames = stream("""
                {"model":"tiny-ring","messages":[{"role":"user","content":"hi"}],"stream":true}""");
        assertThat(frames.get(frames.size() - 2)).startsWith("{\"error\"");
        assertThat(frames.getLast()).isEqualTo("[DONE]");
    }

    @Test
    void clientDisconnectCancelsTheWorkerCall() throws Exception {
        GatewayTestWorkers.script(TOKENIZER.encode("x ".repeat(200)), 30);
        List<String> got = post("""
                {"model":"tiny-ring","messages":[{"role":"user","content":"hi"}],"stream":true}""")
                .exchange().expectStatus().isOk().returnResult(String.class).getResponseBody()
                .take(3).collectList().block(Duration.ofSeconds(5));
        assertThat(got).hasSize(3);
        assertThat(FakeWorker.cancelled.await(3, TimeUnit.SECONDS)).isTrue();
    }

    @Test
    void fullQueueGets429WithRetryAfterAndQueuedRequestTimesOutWith503() throws Exception {
        FakeWorker.extraWaiting = 100;
        Thread.sleep(300);
        // the first request waits in the (size 1) queue; the next one finds it full
        var waiting = java.util.concurrent.CompletableFuture.supplyAsync(() -> post("""
                {"model":"tiny-ring","messages":[{"role":"user","content":"hi"}]}""")
                .exchange().returnResult(String.class).getStatus().value());
        Thread.sleep(200);
        post("""
                {"model":"tiny-ring","messages":[{"role":"user","content":"hi"}]}""")
                .exchange().expectStatus().isEqualTo(429).expectHeader().exists("Retry-After")
                .expectBody().jsonPath("$.error.code").isEqualTo("queue_full");
        assertThat(waiting.get(5, TimeUnit.SECONDS)).isEqualTo(503);
        FakeWorker.extraWaiting = 0;
        Thread.sleep(300);
    }

    @Test
    void logprobsAreReturnedPerToken() {
        int n = TOKENIZER.encode(TEXT).length;
        post("""
                {"model":"tiny-ring","messages":[{"role":"user","content":"hi"}],"logprobs":true,"top_logprobs":2}""")
                .exchange().expectStatus().isOk().expectBody()
                .jsonPath("$.choices[0].logprobs.content.length()").isEqualTo(n)
                .jsonPath("$.choices[0].logprobs.content[0].logprob").isEqualTo(-0.5)
                .jsonPath("$.choices[0].logprobs.content[0].top_logprobs.length()").isEqualTo(2);
        List<String> frames = stream("""
                {"model":"tiny-ring","messages":[{"role":"user","content":"hi"}],"logprobs":true,"stream":true}""");
        long entries = frames.stream().filter(f -> !f.equals("[DONE]"))
                .mapToLong(f -> tools.jackson.databind.json.JsonMapper.builder().build().readTree(f)
                        .path("choices").path(0).path("logprobs").path("content").size()).sum();
        assertThat(entries).isEqualTo(n);
    }

    @Test
    void keepAliveCommentsWhileWaiting() {
        GatewayTestWorkers.script(TOKENIZER.encode("a</think>b"), 150);
        String raw = post("""
                {"model":"tiny-ring","messages":[{"role":"user","content":"hi"}],"stream":true}""")
                .exchange().expectStatus().isOk().expectBody(String.class).returnResult().getResponseBody();
        assertThat(raw).contains("\n: keep-alive\n\n").endsWith("data: [DONE]\n\n");
    }

    @Test
    void oversizedBodyIs413() {
        post("{\"model\":\"tiny-ring\",\"messages\":[{\"role\":\"user\",\"content\":\"" + "a".repeat(2_000_000) + "\"}]}")
                .exchange().expectStatus().isEqualTo(413);
    }

    @Test
    void textCompletionsEndpoint() {
        GatewayTestWorkers.script(TOKENIZER.encode("abc def"), 0);
        client.post().uri("/v1/completions").header("Authorization", "Bearer sk-test")
                .contentType(MediaType.APPLICATION_JSON).bodyValue("""
                        {"model":"tiny-ring","prompt":"hello","max_tokens":50,"stop":" d"}""")
                .exchange().expectStatus().isOk().expectBody()
                .jsonPath("$.object").isEqualTo("text_completion")
                .jsonPath("$.choices[0].text").isEqualTo("abc")
                .jsonPath("$.choices[0].finish_reason").isEqualTo("stop");
    }

    private List<String> stream(String body) {
        String raw = post(body).exchange().expectStatus().isOk()
                .expectHeader().contentTypeCompatibleWith(MediaType.TEXT_EVENT_STREAM)
                .expectBody(String.class).returnResult().getResponseBody();
        return java.util.Arrays.stream(raw.split("\n\n")).filter(f -> f.startsWith("data: "))
                .map(f -> f.substring(6)).toList();
    }

    private static String field(String frame, String name) {
        var node = tools.jackson.databind.json.JsonMapper.builder().build().readTree(frame);
        var v = node.path("choices").path(0).path("delta").path(name);
        return v.isString() ? v.asString() : "";
    }
}
