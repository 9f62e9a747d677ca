package io.ringserve.worker.pipeline;

import io.grpc.Server;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.worker.engine.Engine;
import io.ringserve.worker.engine.EngineObserver;
import io.ringserve.worker.engine.EngineSettings;
import io.ringserve.worker.engine.ShardRunner;
import io.ringserve.worker.reference.Golden;
import io.ringserve.worker.reference.LayerRange;
import io.ringserve.worker.reference.ModelWeights;
import io.ringserve.worker.reference.ReferenceForward;
import io.ringserve.worker.weights.SafetensorsCheckpoint;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.function.UnaryOperator;

/**
 * A pipeline on loopback in one JVM: stages 1.. as {@link StageService}s behind real gRPC (Netty) servers on
 * free ports, and the head as a {@link PipelineRunner} under an {@link Engine}. Layouts read like the
 * {@code layers} setting of each stage, e.g. {@code 0-1,1-3}.
 */
final class TestChain implements AutoCloseable {
    static final Path MODEL = Golden.dir("tiny-ring-a");
    static final Set<Integer> EOS = Set.of(1537, 1540);

    final ModelConfig config;
    final List<LayerRange> layout;
    final List<StageService> stages = new ArrayList<>(); // index 0 unused (the head)
    final List<Server> servers = new ArrayList<>();      // index 0 unused
    final List<Integer> ports = new ArrayList<>();
    final PipelineRunner head;
    final Engine engine;
    private final SafetensorsCheckpoint checkpoint;
    private final List<UnaryOperator<StageIdentity>> identities;
    private final ServerInterceptor[] interceptors;

    /** What each stage is started with; defaults: the model's own identity, a large KV budget. */
    static final class Options {
        final List<UnaryOperator<StageIdentity>> identity = new ArrayList<>();
        long stageKvBytes = 64L << 20;
        ServerInterceptor[] interceptors = new ServerInterceptor[8];
        PipelineRunner.Settings settings = new PipelineRunner.Settings(Duration.ofSeconds(10), 0, Duration.ofMillis(100));
        boolean awaitWhole = true;
        /** Stage i's shard from its CPU reference shard (default: that shard), e.g. one that fails. */
        java.util.function.BiFunction<Integer, ShardRunner, ShardRunner> stageShard = (i, shard) -> shard;
    }

    static List<LayerRange> layout(String text, int total) {
        List<LayerRange> out = new ArrayList<>();
        for (String part : text.split(",")) {
            out.add(LayerRange.parse(part, total));
        }
        return out;
    }

    TestChain(String layoutText, EngineSettings engineSettings, Options options) throws Exception {
        this.config = ModelConfig.load(MODEL);
        this.checkpoint = SafetensorsCheckpoint.open(MODEL);
        this.layout = layout(layoutText, config.numHiddenLayers());
        this.identities = options.identity;
        this.interceptors = options.interceptors;
        int n = layout.size();
        for (int i = 0; i < n; i++) {
            stages.add(null);
            servers.add(null);
            ports.add(0);
        }
        // last to first: each stage needs the address of the next
        for (int i = n - 1; i >= 1; i--) {
            ShardRunner shard = options.stageShard.apply(i, new ReferenceShard(forward(i)));
            StageService s = new StageService(shard, identity(i), options.stageKvBytes, i == n - 1 ? null : "localhost:" + ports.get(i + 1),
                    options.settings.stageTimeout());
            stages.set(i, s);
            servers.set(i, serve(i, 0));
            ports.set(i, servers.get(i).getPort());
        }
        head = new PipelineRunner(forward(0), identity(0), "localhost:" + ports.get(1), engineSettings.maxBatchTokens(), options.settings);
        engine = new Engine(head, EOS, engineSettings, EngineObserver.NONE).start();
        if (options.awaitWhole) {
            awaitWhole(Duration.ofSeconds(20));
        }
    }

    ReferenceForward forward(int stage) {
        return new ReferenceForward(ModelWeights.load(config, checkpoint, layout.get(stage)));
    }

    StageIdentity identity(int stage) {
        StageIdentity id = StageIdentity.of(MODEL, layout.get(stage));
        return stage < identities.size() && identities.get(stage) != null ? identities.get(stage).apply(id) : id;
    }

    private Server serve(int stage, int port) throws IOException {
        var service = interceptors[stage] == null ? ServerInterceptors.intercept(stages.get(stage))
                : ServerInterceptors.intercept(stages.get(stage), interceptors[stage]);
        return StageChannels.configure(NettyServerBuilder.forAddress(new InetSocketAddress("localhost", port))).addService(service).build().start();
    }

    /** Kills stage i's server: every stream through it ends at once. */
    void kill(int stage) throws InterruptedException {
        servers.get(stage).shutdownNow().awaitTermination();
    }

    /** Starts stage i's server again on its old port. */
    void restart(int stage) throws Exception {
        long end = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (true) {
            try {
                servers.set(stage, serve(stage, ports.get(stage)));
                return;
            } catch (IOException e) {
                if (System.nanoTime() > end) {
                    throw new UncheckedIOException("port " + ports.get(stage) + " did not become free", e);
                }
                Thread.sleep(50);
            }
        }
    }

    void awaitWhole(Duration timeout) throws InterruptedException {
        long end = System.nanoTime() + timeout.toNanos();
        while (!head.isWhole()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("the chain did not become whole within " + timeout + ": " + head.brokenReason());
            }
            Thread.sleep(10);
        }
    }

    /** Waits until the head reports the chain not whole for a reason containing {@code text}. */
    String awaitBroken(String text, Duration timeout) throws InterruptedException {
        long end = System.nanoTime() + timeout.toNanos();
        while (true) {
            String reason = head.brokenReason();
            if (reason != null && reason.contains(text)) {
                return reason;
            }
            if (System.nanoTime() > end) {
                throw new AssertionError("the head never reported '" + text + "' within " + timeout + "; last: " + reason);
            }
            Thread.sleep(10);
        }
    }

    @Override
    public void close() {
        engine.close();
        head.close();
        for (int i = 1; i < stages.size(); i++) {
            if (servers.get(i) != null) {
                servers.get(i).shutdownNow();
            }
            if (stages.get(i) != null) {
                stages.get(i).close();
            }
        }
        checkpoint.close();
    }
}
