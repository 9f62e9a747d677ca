package io.ringserve.gateway;

import static org.assertj.core.api.Assertions.assertThat;

import io.github.resilience4j.circuitbreaker.CircuitBreakerRegistry;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.ringserve.gateway.config.GatewayProperties;
import io.ringserve.gateway.worker.Lease;
import io.ringserve.gateway.worker.WorkerNode;
import io.ringserve.gateway.worker.WorkerPool;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class GatewayWorkerPoolTests {

    @Test
    void dnsNameResolvesToWorkersThatBecomeReadyAndLeasesRespectCapacity() throws Exception {
        FakeWorker worker = new FakeWorker("127.0.0.1:7");
        worker.serving(true);
        GatewayProperties.Workers config = new GatewayProperties.Workers(List.of(), "localhost", 7,
                Duration.ofSeconds(30), Duration.ofMillis(20));
        try (WorkerPool pool = new WorkerPool(config,
                a -> InProcessChannelBuilder.forName(a).directExecutor().build(), CircuitBreakerRegistry.ofDefaults())) {
            pool.start();
            long deadline = System.currentTimeMillis() + 3000;
            while (!pool.anyReady() && System.currentTimeMillis() < deadline) {
                Thread.sleep(20);
            }
            assertThat(pool.nodes()).extracting(WorkerNode::address).contains("127.0.0.1:7");
            assertThat(pool.anyReady()).isTrue();
            // the fake reports max_running 4
            Lease[] leases = new Lease[4];
            for (int i = 0; i < 4; i++) {
                leases[i] = pool.tryLease(Set.of());
                assertThat(leases[i]).isNotNull();
            }
            assertThat(pool.tryLease(Set.of())).isNull();
            leases[0].release();
            leases[0].release();
            assertThat(pool.tryLease(Set.of())).isNotNull();
        } finally {
            worker.server.shutdownNow();
        }
    }

    @Test
    void aWorkerWithAnotherTokenizerIsKeptOutOfRotation() throws Exception {
        FakeWorker other = new FakeWorker("127.0.0.1:8");
        other.serving(true);
        other.tokenizerSha256 = "0123456789abcdef";
        FakeWorker same = new FakeWorker("127.0.0.1:9");
        same.serving(true);
        same.tokenizerSha256 = "fedcba9876543210";
        GatewayProperties.Workers config = new GatewayProperties.Workers(List.of("127.0.0.1:8", "127.0.0.1:9"), null, 50051,
                Duration.ofSeconds(30), Duration.ofMillis(20));
        try (WorkerPool pool = new WorkerPool(config, a -> InProcessChannelBuilder.forName(a).directExecutor().build(),
                CircuitBreakerRegistry.ofDefaults(), "FEDCBA9876543210")) {
            pool.start();
            long deadline = System.currentTimeMillis() + 3000;
            while (pool.nodes().stream().anyMatch(n -> n.info() == null) && System.currentTimeMillis() < deadline) {
                Thread.sleep(20);
            }
            WorkerNode mismatched = pool.nodes().stream().filter(n -> n.address().endsWith(":8")).findFirst().orElseThrow();
            WorkerNode matching = pool.nodes().stream().filter(n -> n.address().endsWith(":9")).findFirst().orElseThrow();
            while (!matching.ready() && System.currentTimeMillis() < deadline) {
                Thread.sleep(20);
            }
            assertThat(matching.ready()).isTrue();
            assertThat(mismatched.ready()).isFalse();
            assertThat(mismatched.incompatibility()).contains("another tokenizer").contains("cannot share one model id");
            for (int i = 0; i < 4; i++) {
                assertThat(pool.tryLease(Set.of()).node().address()).endsWith(":9");
            }
        } finally {
            other.server.shutdownNow();
            same.server.shutdownNow();
        }
    }

    @Test
    void aWorkerThatWasAwayForSecondsIsSeenAtTheNextPoll() throws Exception {
        int port;
        try (java.net.ServerSocket probe = new java.net.ServerSocket(0)) {
            port = probe.getLocalPort();
        }
        String address = "127.0.0.1:" + port;
        GatewayProperties.Workers config = new GatewayProperties.Workers(List.of(address), null, 50051,
                Duration.ofSeconds(30), Duration.ofMillis(50));
        FakeWorker fake = new FakeWorker("away-" + port);
        fake.serving(true);
        io.grpc.Server server = null;
        try (WorkerPool pool = new WorkerPool(config,
                a -> io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder.forTarget(a).usePlaintext().build(),
                CircuitBreakerRegistry.ofDefaults())) {
            pool.start();
            // nothing listens for 6 s: left alone, gRPC's reconnect backoff would now wait several seconds
            Thread.sleep(6000);
            assertThat(pool.anyReady()).isFalse();
            server = io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder.forAddress(new java.net.InetSocketAddress("127.0.0.1", port))
                    .addService(fake).addService(fake.health.getHealthService()).build().start();
            long start = System.nanoTime();
            long deadline = start + Duration.ofMillis(1500).toNanos();
            while (!pool.anyReady() && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertThat(pool.anyReady()).as("ready within 1.5 s of the worker coming back").isTrue();
        } finally {
            if (server != null) {
                server.shutdownNow();
            }
            fake.server.shutdownNow();
        }
    }

    @Test
    void aWorkerOfAnotherArchitectureCannotJoinThePool() throws Exception {
        FakeWorker first = new FakeWorker("127.0.0.1:11");
        first.serving(true);
        GatewayProperties.Workers config = new GatewayProperties.Workers(List.of("127.0.0.1:11", "127.0.0.1:12"), null, 50051,
                Duration.ofSeconds(30), Duration.ofMillis(20));
        FakeWorker later = null;
        try (WorkerPool pool = new WorkerPool(config, a -> InProcessChannelBuilder.forName(a).directExecutor().build(),
                CircuitBreakerRegistry.ofDefaults())) {
            pool.start();
            long deadline = System.currentTimeMillis() + 3000;
            while (!pool.anyReady() && System.currentTimeMillis() < deadline) {
                Thread.sleep(20);
            }
            assertThat(pool.servedModel().getArchitecture()).isEqualTo("BailingMoeV2ForCausalLM");
            // a Ring-lite worker comes up behind the same model id
            later = new FakeWorker("127.0.0.1:12");
            later.architecture = "BailingMoeForCausalLM";
            later.serving(true);
            WorkerNode node = null;
            while (System.currentTimeMillis() < deadline + 3000) {
                node = pool.nodes().stream().filter(n -> n.address().endsWith(":12") && n.info() != null).findFirst().orElse(null);
                if (node != null) {
                    break;
                }
                Thread.sleep(20);
            }
            assertThat(node).isNotNull();
            assertThat(node.ready()).isFalse();
            assertThat(node.incompatibility()).contains("BailingMoeForCausalLM").contains("cannot share one model id");
        } finally {
            first.server.shutdownNow();
            if (later != null) {
                later.server.shutdownNow();
            }
        }
    }
}
