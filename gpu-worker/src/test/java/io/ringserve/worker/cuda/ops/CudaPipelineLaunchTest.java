package io.ringserve.worker.cuda.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.ringserve.model.config.BailingMoeV2Config;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.model.sampling.StoppingParams;
import io.ringserve.protocol.v1.HiddenDtype;
import io.ringserve.worker.cuda.CudaRunner;
import io.ringserve.worker.cuda.CudaWeights;
import io.ringserve.worker.cuda.RecordingDevice;
import io.ringserve.worker.cuda.RecordingDevice.Launch;
import io.ringserve.worker.engine.Engine;
import io.ringserve.worker.engine.EngineEvent;
import io.ringserve.worker.engine.EngineObserver;
import io.ringserve.worker.engine.EngineRequest;
import io.ringserve.worker.engine.EngineSettings;
import io.ringserve.worker.pipeline.PipelineRunner;
import io.ringserve.worker.pipeline.StageChannels;
import io.ringserve.worker.pipeline.StageIdentity;
import io.ringserve.worker.pipeline.StageService;
import io.ringserve.worker.reference.LayerRange;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A pipeline of two CUDA shards of Ring-mini-2.0 (layers 0-10 and 10-20, dummy weights) at the real shapes, without a
 * GPU: each shard's runner on its own driverless device that records launches ({@link RecordingDevice}; no values,
 * eager, one stream), the stage behind a real gRPC server, the head under the engine, bf16 hidden states. Requests of
 * every kind (a chunked prefill of 300 tokens, greedy, seeded, penalties and top logprobs sampled on the host) run to
 * their token budget through the whole protocol, one engine step in the chain at a time and two; the head launches the embedding and never the sampler, the stage
 * never the embedding and always the sampler, and every launch on either side matches its kernel's PTX signature.
 * What it cannot see: any value (tokens are all 0), graphs, dual streams.
 */
class CudaPipelineLaunchTest {

    @ParameterizedTest(name = "steps in flight {0}")
    @ValueSource(ints = {1, 2})
    void twoCudaShardsServeTheEngineThroughTheStageProtocol(int stepsInFlight) throws Exception {
        Map<String, PtxKernels> ptx = KernelSignatureTest.ptx(); // skips without PTX
        ModelConfig c = BailingMoeV2Config.ringMini20();
        LayerRange headRange = new LayerRange(0, 10, 20);
        LayerRange stageRange = new LayerRange(10, 20, 20);
        try (RecordingDevice headDevice = new RecordingDevice();
             RecordingDevice stageDevice = new RecordingDevice();
             CudaWeights headWeights = CudaWeights.dummy(headDevice.device(), c, headRange, 7);
             CudaWeights stageWeights = CudaWeights.dummy(stageDevice.device(), c, stageRange, 7)) {
            headDevice.take();
            stageDevice.take();
            CudaRunner headShard = new CudaRunner(headDevice.device(), headWeights, false, false);
            CudaRunner stageShard = new CudaRunner(stageDevice.device(), stageWeights, false, false);
            StageService stage = new StageService(stageShard, StageIdentity.of(c, stageRange), 8L << 30, null, Duration.ofSeconds(30));
            Server server = StageChannels.configure(NettyServerBuilder.forAddress(new InetSocketAddress("localhost", 0))).addService(stage).build()
                    .start();
            PipelineRunner head = new PipelineRunner(headShard, StageIdentity.of(c, headRange), "localhost:" + server.getPort(), 256,
                    new PipelineRunner.Settings(Duration.ofSeconds(30), 0, Duration.ofMillis(100), HiddenDtype.HIDDEN_BFLOAT16, stepsInFlight));
            EngineSettings settings = new EngineSettings(8, 16, 256, 16, 256 * head.kvBytesPerBlock(16));
            List<String> failures = new ArrayList<>();
            try (Engine engine = new Engine(head, Set.of(), settings, EngineObserver.NONE).start()) {
                long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (!head.isWhole()) {
                    assertTrue(System.nanoTime() < end, "the chain did not become whole: " + head.brokenReason());
                    Thread.sleep(10);
                }
                List<CompletableFuture<Integer>> done = new ArrayList<>();
                SamplingParams[] kinds = {SamplingParams.greedy(), new SamplingParams(0.8, 20, 0.9, 0, 1, 0, 0, 42),
                    new SamplingParams(0.7, 0, 1, 0, 1.2, 0.1, 0.1, 7), SamplingParams.greedy()};
                int[] topLogprobs = {-1, 0, -1, 5};
                for (int i = 0; i < 6; i++) {
                    int[] prompt = new int[i == 0 ? 300 : 3 + 17 * i];
                    for (int j = 0; j < prompt.length; j++) {
                        prompt[j] = (i * 131 + j * 7) % 1000;
                    }
                    CompletableFuture<Integer> f = new CompletableFuture<>();
                    AtomicInteger tokens = new AtomicInteger();
                    engine.submit(new EngineRequest("r" + i, prompt, kinds[i % kinds.length], new StoppingParams(6, Set.of(), true), topLogprobs[i % 4],
                            null), e -> {
                                switch (e) {
                                    case EngineEvent.Tokens t -> tokens.addAndGet(t.ids().length);
                                    case EngineEvent.Finished fin -> f.complete(tokens.get());
                                    case EngineEvent.Failed fail -> {
                                        failures.add(fail.code() + " " + fail.message());
                                        f.complete(-1);
                                    }
                                }
                            });
                    done.add(f);
                }
                for (CompletableFuture<Integer> f : done) {
                    assertEquals(6, f.get(60, TimeUnit.SECONDS), failures.toString());
                }
            } finally {
                head.close();
                server.shutdownNow();
                stage.close();
            }
            assertTrue(failures.isEmpty(), failures.toString());
            assertTrue(stage.steps() > 0);
            assertEquals(stepsInFlight, head.mostStepsInFlight());
            List<String> problems = new ArrayList<>();
            Set<String> headKernels = new TreeSet<>();
            Set<String> stageKernels = new TreeSet<>();
            for (Launch l : headDevice.take()) {
                headKernels.add(l.name());
                problems.addAll(KernelSignatureTest.problems(ptx, l));
            }
            for (Launch l : stageDevice.take()) {
                stageKernels.add(l.name());
                problems.addAll(KernelSignatureTest.problems(ptx, l));
            }
            assertTrue(problems.isEmpty(), String.join("\n", problems.subList(0, Math.min(40, problems.size()))));
            assertTrue(headKernels.contains("embedding.embedding") && headKernels.stream().noneMatch(k -> k.startsWith("sample.")), headKernels.toString());
            assertFalse(stageKernels.contains("embedding.embedding"), stageKernels.toString());
            assertTrue(stageKernels.contains("sample.sample_partials"), stageKernels.toString());
            assertTrue(headKernels.contains("attention_prefill.attention_prefill") && stageKernels.contains("attention_decode.attention_decode_split"),
                    headKernels + " / " + stageKernels);
            headShard.close();
            stageShard.close();
        }
    }
}
