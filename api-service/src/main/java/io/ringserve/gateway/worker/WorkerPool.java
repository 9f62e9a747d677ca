package io.ringserve.gateway.worker;

import io.github.resilience4j.circuitbreaker.CircuitBreakerRegistry;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.stub.StreamObserver;
import io.ringserve.gateway.config.GatewayProperties;
import io.ringserve.protocol.v1.InfoRequest;
import io.ringserve.protocol.v1.InfoResponse;
import io.ringserve.protocol.v1.LoadRequest;
import io.ringserve.protocol.v1.LoadResponse;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.Disposable;
import reactor.core.Disposables;
import reactor.core.publisher.Flux;
import reactor.core.scheduler.Schedulers;

/**
 * The workers: static addresses plus every address a DNS name resolves to, refreshed periodically; each
 * worker's Info, Load and health are polled. Picks the ready worker with the most free capacity.
 */
public final class WorkerPool implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(WorkerPool.class);

    private final GatewayProperties.Workers config;
    private final WorkerChannelFactory channels;
    private final CircuitBreakerRegistry breakers;
    private final Map<String, WorkerNode> nodes = new ConcurrentHashMap<>();
    private final List<Runnable> capacityListeners = new CopyOnWriteArrayList<>();
    private final Disposable.Composite tasks = Disposables.composite();
    private final String tokenizerSha256;
    /** Info of the first compatible worker: every other worker must serve the same architecture and shape. */
    private volatile InfoResponse reference;

    public WorkerPool(GatewayProperties.Workers config, WorkerChannelFactory channels, CircuitBreakerRegistry breakers) {
        this(config, channels, breakers, null);
    }

    /**
     * @param tokenizerSha256 SHA-256 of the gateway's tokenizer.json; a worker whose Info reports another one
     *                        serves a different model and is kept out of rotation (null: no check)
     */
    public WorkerPool(GatewayProperties.Workers config, WorkerChannelFactory channels, CircuitBreakerRegistry breakers,
                      String tokenizerSha256) {
        this.config = config;
        this.channels = channels;
        this.breakers = breakers;
        this.tokenizerSha256 = tokenizerSha256;
    }

    /** Starts discovery and polling. */
    public void start() {
        refreshMembers();
        // Flux<Long> ticks → blocking DNS lookups on boundedElastic
        if (config.dnsName() != null && !config.dnsName().isBlank()) {
            tasks.add(Flux.interval(config.refreshInterval(), Schedulers.boundedElastic())
                    .subscribe(t -> refreshMembers()));
        }
        // Flux<Long> ticks → asynchronous gRPC polls (callbacks on gRPC threads)
        tasks.add(Flux.interval(java.time.Duration.ZERO, config.pollInterval())
                .subscribe(t -> nodes.values().forEach(this::poll)));
    }

    /** Called whenever capacity may have grown (a lease released, a poll answered). */
    public void onCapacity(Runnable listener) {
        capacityListeners.add(listener);
    }

    void capacityChanged() {
        capacityListeners.forEach(Runnable::run);
    }

    private void refreshMembers() {
        Set<String> wanted = new LinkedHashSet<>(config.addresses());
        if (config.dnsName() != null && !config.dnsName().isBlank()) {
            try {
                for (InetAddress a : InetAddress.getAllByName(config.dnsName())) {
                    String host = a instanceof java.net.Inet6Address ? "[" + a.getHostAddress() + "]" : a.getHostAddress();
                    wanted.add(host + ":" + config.dnsPort());
                }
            } catch (UnknownHostException e) {
                log.warn("ringserve.gateway.workers.dns-name {} does not resolve: {}", config.dnsName(), e.getMessage());
            }
        }
        for (String address : wanted) {
            nodes.computeIfAbsent(address, a -> new WorkerNode(a, channels.open(a), breakers.circuitBreaker("worker-" + a)));
        }
        for (String address : List.copyOf(nodes.keySet())) {
            if (!wanted.contains(address)) {
                WorkerNode gone = nodes.remove(address);
                gone.channel().shutdown();
            }
        }
    }

    private void poll(WorkerNode node) {
        if (node.info() == null) {
            node.stub().withDeadlineAfter(5, TimeUnit.SECONDS).info(InfoRequest.getDefaultInstance(),
                    new Unary<>(info -> accept(node, info), e -> { }));
        }
        node.stub().withDeadlineAfter(5, TimeUnit.SECONDS).load(LoadRequest.getDefaultInstance(),
                new Unary<LoadResponse>(l -> {
                    node.load(l);
                    capacityChanged();
                }, e -> pollFailed(node, "Load", e)));
        node.health().withDeadlineAfter(5, TimeUnit.SECONDS).check(HealthCheckRequest.getDefaultInstance(),
                new Unary<HealthCheckResponse>(h -> {
                    boolean up = h.getStatus() == HealthCheckResponse.ServingStatus.SERVING;
                    if (up && !node.serving()) {
                        node.info(null); // back after a restart: it may serve another model now, ask again
                    }
                    node.serving(up);
                    capacityChanged();
                }, e -> pollFailed(node, "health check", e)));
    }

    /** A failed poll: the worker is not serving, and the console shows why. */
    private static void pollFailed(WorkerNode node, String what, Throwable e) {
        node.serving(false);
        io.grpc.Status s = io.grpc.Status.fromThrowable(e);
        if (s.getCode() == io.grpc.Status.Code.UNAVAILABLE) {
            // gRPC backs off reconnects up to minutes; the poll interval is the retry pace we want, so a
            // restarted worker is seen at the next poll however long it was away
            node.channel().resetConnectBackoff();
        }
        node.error(what + " failed: " + s.getCode() + (s.getDescription() == null ? "" : " (" + s.getDescription() + ")"));
    }

    /** Records a worker's Info; one that tokenizes differently serves another model and is never ready. */
    private void accept(WorkerNode node, InfoResponse info) {
        String theirs = info.getTokenizerSha256();
        String reason = null;
        if (tokenizerSha256 != null && !theirs.isEmpty() && !theirs.equalsIgnoreCase(tokenizerSha256)) {
            reason = "worker " + node.address() + " serves model '" + info.getModelId() + "' with another tokenizer (sha256 "
                    + abbreviate(theirs) + ", this gateway's is " + abbreviate(tokenizerSha256)
                    + "): workers of different models cannot share one model id";
        }
        if (reason == null) {
            synchronized (this) {
                if (reference == null) {
                    reference = info;
                } else if (!sameModel(reference, info)) {
                    reason = "worker " + node.address() + " serves " + describe(info) + " but this pool serves " + describe(reference)
                            + ": workers of different models cannot share one model id";
                }
            }
        }
        if (reason != null && !reason.equals(node.incompatibility())) {
            log.warn("{}; it is kept out of rotation", reason);
        }
        node.incompatibility(reason);
        node.info(info);
        capacityChanged();
    }

    /** Same architecture and dimensions (the tokenizer is checked separately). */
    static boolean sameModel(InfoResponse a, InfoResponse b) {
        return a.getArchitecture().equals(b.getArchitecture()) && a.getShape().equals(b.getShape());
    }

    private static String describe(InfoResponse i) {
        var s = i.getShape();
        return "'" + i.getModelId() + "' (" + i.getArchitecture() + ", " + s.getNumLayers() + " layers, hidden " + s.getHiddenSize() + ", "
                + s.getNumExperts() + " experts)";
    }

    /** What the workers of this pool serve, once one has answered Info; null before. */
    public InfoResponse servedModel() {
        return reference;
    }

    private static String abbreviate(String sha) {
        return sha.length() > 12 ? sha.substring(0, 12) + "…" : sha;
    }

    /** Takes a slot on the best ready worker, preferring ones not in {@code avoid}; null when none has room. */
    public Lease tryLease(Set<String> avoid) {
        List<WorkerNode> ready = nodes.values().stream().filter(WorkerNode::ready).toList();
        boolean otherExists = ready.stream().anyMatch(n -> !avoid.contains(n.address()));
        List<WorkerNode> candidates = new ArrayList<>(otherExists
                ? ready.stream().filter(n -> !avoid.contains(n.address())).toList() : ready);
        candidates.sort(Comparator.comparingInt(WorkerNode::freeCapacity).reversed());
        for (WorkerNode n : candidates) {
            while (true) {
                int current = n.inFlight().get();
                if (n.freeCapacity() <= 0) {
                    break;
                }
                if (n.inFlight().compareAndSet(current, current + 1)) {
                    return new Lease(n, this);
                }
            }
        }
        return null;
    }

    /** Whether at least one worker is ready. */
    public boolean anyReady() {
        return nodes.values().stream().anyMatch(WorkerNode::ready);
    }

    /** Every known worker. */
    public Collection<WorkerNode> nodes() {
        return List.copyOf(nodes.values());
    }

    /** The smallest context length a worker reported, or {@code fallback} when none has. */
    public int contextLength(int fallback) {
        return nodes.values().stream().map(WorkerNode::info).filter(i -> i != null && i.getContextLength() > 0)
                .mapToInt(InfoResponse::getContextLength).min().orElse(fallback);
    }

    @Override
    public void close() {
        tasks.dispose();
        nodes.values().forEach(n -> n.channel().shutdownNow());
        nodes.clear();
    }

    /** Callback adapter for unary calls. */
    private record Unary<T>(java.util.function.Consumer<T> ok, java.util.function.Consumer<Throwable> failed)
            implements StreamObserver<T> {
        @Override
        public void onNext(T value) {
            ok.accept(value);
        }

        @Override
        public void onError(Throwable t) {
            failed.accept(t);
        }

        @Override
        public void onCompleted() {
        }
    }
}
