package io.ringserve.worker.service;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.protocol.v1.Backend;
import io.ringserve.protocol.v1.ErrorCode;
import io.ringserve.protocol.v1.FinishReason;
import io.ringserve.protocol.v1.GenerateEvent;
import io.ringserve.protocol.v1.GenerateRequest;
import io.ringserve.protocol.v1.InfoRequest;
import io.ringserve.protocol.v1.InfoResponse;
import io.ringserve.protocol.v1.LoadResponse;
import io.ringserve.protocol.v1.SamplingParameters;
import io.ringserve.protocol.v1.WorkerGrpc;
import io.ringserve.worker.reference.Golden;
import java.nio.file.Files;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;

/** Protocol v1 over a real loopback gRPC channel against the whole application. */
class WorkerGrpcServiceTest extends WorkerTestSupport {

    @Test
    void greedyGenerateStreamsTheSoloTokensThenOneFinishedEvent() {
        for (Golden.Prompt p : Golden.prompts("tiny-ring-a")) {
            List<GenerateEvent> events = generate(greedy("greedy-" + p.name(), p.inputIds(), 24, true));
            GenerateEvent end = terminal(events);
            assertTrue(end.hasFinished(), end.toString());
            assertEquals(FinishReason.LENGTH, end.getFinished().getReason());
            assertArrayEquals(solo(p.inputIds(), SamplingParams.greedy(), 24, true), ids(events), p.name());
            assertUsage(end, p.inputIds().length, 24);
            var t = end.getFinished().getTimings();
            assertTrue(t.getTotalTime().getSeconds() > 0 || t.getTotalTime().getNanos() > 0, "total time is set");
            assertTrue(t.getTimeToFirstToken().getNanos() > 0 || t.getTimeToFirstToken().getSeconds() > 0, "time to first token is set");
        }
    }

    @Test
    void eosEndsGenerationLikeTheGeneratorAndSeededSamplingIsReproducible() {
        int[] prompt = prompt(11, 20);
        List<GenerateEvent> events = generate(greedy("eos", prompt, 200, false));
        int[] expected = solo(prompt, SamplingParams.greedy(), 200, false);
        assertArrayEquals(expected, ids(events));
        GenerateEvent end = terminal(events);
        boolean stoppedOnEos = expected.length < 200 || worker.model().eosTokenIds().contains(expected[expected.length - 1]);
        assertEquals(stoppedOnEos ? FinishReason.EOS : FinishReason.LENGTH, end.getFinished().getReason());
        assertUsage(end, 20, expected.length);

        GenerateRequest seeded = greedy("seeded", prompt, 16, true).toBuilder()
                .setSampling(SamplingParameters.newBuilder().setTemperature(0.9f).setTopK(40).setTopP(0.95f).setSeed(1234)).build();
        int[] a = ids(generate(seeded));
        assertArrayEquals(a, ids(generate(seeded)), "same seed, same tokens");
        assertArrayEquals(solo(prompt, new SamplingParams(0.9f, 40, 0.95f, 0, 1, 0, 0, 1234), 16, true), a, "as the solo generator samples");
    }

    @Test
    void logprobsArriveParallelToTheTokens() {
        GenerateRequest r = greedy("logprobs", prompt(5, 8), 5, true).toBuilder().setLogprobs(true).setTopLogprobs(3).build();
        List<GenerateEvent> events = generate(r);
        for (GenerateEvent e : events) {
            if (e.hasTokens()) {
                assertEquals(e.getTokens().getTokenIdsCount(), e.getTokens().getLogprobsCount());
                var lp = e.getTokens().getLogprobs(0);
                assertEquals(3, lp.getTopLogprobsCount());
                // greedy: the sampled token is the most likely one
                assertEquals(e.getTokens().getTokenIds(0), lp.getTopLogprobs(0).getTokenId());
                assertEquals(lp.getTopLogprobs(0).getLogprob(), lp.getLogprob(), 1e-6);
            }
        }
        assertEquals(5, ids(events).length);
    }

    @Test
    void infoLoadAndStandardHealthDescribeTheWorker() throws Exception {
        InfoResponse info = blocking().info(InfoRequest.getDefaultInstance());
        ModelConfig c = worker.model().config();
        assertEquals("tiny-ring-a", info.getModelId());
        assertEquals("BailingMoeV2ForCausalLM", info.getArchitecture());
        assertEquals(c.numHiddenLayers(), info.getShape().getNumLayers());
        assertEquals(64, info.getShape().getHiddenSize());
        assertEquals(4, info.getShape().getNumAttentionHeads());
        assertEquals(2, info.getShape().getNumKeyValueHeads());
        assertEquals(16, info.getShape().getHeadDim());
        assertEquals(16, info.getShape().getNumExperts());
        assertEquals(4, info.getShape().getNumExpertsPerToken());
        assertEquals(1664, info.getShape().getVocabSize());
        assertEquals(512, info.getContextLength());
        assertEquals(Math.min(1664, worker.model().tokenizer().vocabSize()), info.getVocabSize());
        byte[] tokenizer = Files.readAllBytes(Golden.dir("tiny-ring-a").resolve("tokenizer.json"));
        assertEquals(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(tokenizer)), info.getTokenizerSha256());
        assertEquals(Backend.CPU, info.getBackend());
        assertTrue(info.getDeviceName().startsWith("cpu: "), info.getDeviceName());
        assertEquals(16, info.getKvBlockSize());
        assertEquals(worker.engine().kvTotalBlocks(), info.getKvTotalBlocks());
        assertEquals((8L << 20) / (16L * 2 * 3 * 32 * 4), info.getKvTotalBlocks(), "8 MB of f32 K+V, 3 layers x 32 wide, 16-token blocks");
        assertEquals(512, info.getMaxBatchTokens());
        assertEquals(64, info.getMaxRunning());
        assertEquals(0, info.getLayers().getStart());
        assertEquals(3, info.getLayers().getEnd());
        assertEquals(3, info.getLayers().getTotal());
        assertEquals(List.of(1537, 1540), info.getEosTokenIdsList());
        assertEquals(1, info.getProtocolVersion());
        assertEquals(io.ringserve.protocol.v1.PipelineRole.WHOLE_MODEL, info.getPipelineRole());
        assertEquals("", info.getNextStage());

        await(() -> load().getRunning() == 0, "no request runs");
        LoadResponse load = load();
        assertEquals(info.getKvTotalBlocks(), load.getKvTotalBlocks());
        assertEquals(load.getKvTotalBlocks(), load.getKvFreeBlocks());
        assertEquals(0, load.getWaiting());
        assertEquals(0f, load.getKvUsage());
        assertEquals(false, load.getDraining());

        var health = HealthGrpc.newBlockingStub(channel());
        assertEquals(ServingStatus.SERVING, health.check(HealthCheckRequest.getDefaultInstance()).getStatus());
        assertEquals(ServingStatus.SERVING, health.check(HealthCheckRequest.newBuilder().setService(WorkerGrpc.SERVICE_NAME).build()).getStatus());
    }

    @Test
    void cancellingTheCallFreesTheRequestsKvBlocks() throws Exception {
        int total = worker.engine().kvTotalBlocks();
        Call call = Call.start(WorkerGrpc.newStub(channel()), greedy("cancel-me", prompt(7, 40), 400, true), Call::cancel);
        Throwable end = call.await();
        StatusRuntimeException cancelled = assertInstanceOf(StatusRuntimeException.class, end);
        assertEquals(Status.Code.CANCELLED, cancelled.getStatus().getCode());
        assertTrue(call.tokenCount() >= 1 && call.tokenCount() < 400, "cancelled after " + call.tokenCount() + " tokens");
        assertTrue(call.events.stream().noneMatch(e -> e.hasFinished() || e.hasError()), "no terminal event reaches a cancelled call");
        await(() -> {
            LoadResponse l = load();
            return l.getRunning() == 0 && l.getWaiting() == 0 && l.getKvFreeBlocks() == total;
        }, "the cancelled request's KV blocks are free");
    }

    @Test
    void badRequestsGetInvalidRequestNamingTheFieldWhileAGoodStreamFinishes() throws Exception {
        int[] goodPrompt = prompt(21, 30);
        Call good = Call.start(WorkerGrpc.newStub(channel()), greedy("good", goodPrompt, 300, true), null);

        GenerateRequest base = greedy("bad", prompt(1, 4), 8, true);
        Map<String, UnaryOperator<GenerateRequest.Builder>> bad = new LinkedHashMap<>();
        bad.put("prompt_token_ids", b -> b.clearPromptTokenIds());
        bad.put("prompt_token_ids ", b -> b.clearPromptTokenIds().addAllPromptTokenIds(boxed(prompt(2, 512))));
        bad.put("stopping.max_new_tokens", b -> b.clearPromptTokenIds().addAllPromptTokenIds(boxed(prompt(2, 500))).setStopping(
                b.getStopping().toBuilder().setMaxNewTokens(13)));
        bad.put("stopping.max_new_tokens ", b -> b.setStopping(b.getStopping().toBuilder().setMaxNewTokens(0)));
        bad.put("prompt_token_ids  ", b -> b.addPromptTokenIds(99_999));
        bad.put("prompt_token_ids   ", b -> b.addPromptTokenIds(-1)); // uint32 4294967295
        bad.put("sampling.top_k", b -> b.setSampling(SamplingParameters.newBuilder().setTemperature(1).setTopK(1_000_000)));
        bad.put("sampling.top_p", b -> b.setSampling(SamplingParameters.newBuilder().setTemperature(1).setTopP(1.5f)));
        bad.put("sampling.temperature", b -> b.setSampling(SamplingParameters.newBuilder().setTemperature(-1)));
        bad.put("sampling.presence_penalty", b -> b.setSampling(SamplingParameters.newBuilder().setPresencePenalty(3)));
        bad.put("top_logprobs", b -> b.setLogprobs(true).setTopLogprobs(21));
        bad.put("stopping.stop_token_ids", b -> b.setStopping(b.getStopping().toBuilder().addStopTokenIds(99_999)));
        List<String> failures = new ArrayList<>();
        for (var e : bad.entrySet()) {
            List<GenerateEvent> events = generate(e.getValue().apply(base.toBuilder()).build());
            String param = e.getKey().strip();
            if (events.size() != 1 || !events.getFirst().hasError() || events.getFirst().getError().getCode() != ErrorCode.INVALID_REQUEST
                    || !param.equals(events.getFirst().getError().getParam()) || events.getFirst().getError().getMessage().isBlank()) {
                failures.add(param + " -> " + events);
            }
        }
        assertEquals(List.of(), failures);

        assertNull(good.await(), "the good stream completes normally");
        GenerateEvent end = terminal(good.events);
        assertEquals(FinishReason.LENGTH, end.getFinished().getReason());
        assertUsage(end, 30, 300);
        assertArrayEquals(solo(goodPrompt, SamplingParams.greedy(), 300, true), ids(good.events));
    }

    static List<Integer> boxed(int[] ids) {
        return java.util.Arrays.stream(ids).boxed().toList();
    }
}
