package io.ringserve.worker.service;

import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.ringserve.model.sampling.SamplingParams;
import io.ringserve.model.sampling.StoppingParams;
import io.ringserve.protocol.v1.Backend;
import io.ringserve.protocol.v1.ErrorCode;
import io.ringserve.protocol.v1.ErrorEvent;
import io.ringserve.protocol.v1.FinishReason;
import io.ringserve.protocol.v1.FinishedEvent;
import io.ringserve.protocol.v1.GenerateEvent;
import io.ringserve.protocol.v1.GenerateRequest;
import io.ringserve.protocol.v1.InfoRequest;
import io.ringserve.protocol.v1.InfoResponse;
import io.ringserve.protocol.v1.LayerRange;
import io.ringserve.protocol.v1.LoadRequest;
import io.ringserve.protocol.v1.LoadResponse;
import io.ringserve.protocol.v1.ModelShape;
import io.ringserve.protocol.v1.SamplingParameters;
import io.ringserve.protocol.v1.StoppingParameters;
import io.ringserve.protocol.v1.Timings;
import io.ringserve.protocol.v1.TokenLogprob;
import io.ringserve.protocol.v1.TokensEvent;
import io.ringserve.protocol.v1.TopLogprob;
import io.ringserve.protocol.v1.Usage;
import io.ringserve.protocol.v1.WorkerGrpc;
import io.ringserve.model.config.ModelConfig;
import io.ringserve.model.config.ConfigException;
import io.ringserve.worker.engine.Engine;
import io.ringserve.worker.engine.EngineEvent;
import io.ringserve.worker.engine.EngineListener;
import io.ringserve.worker.engine.EngineRequest;
import io.ringserve.worker.reference.PagedKvCache;
import java.nio.file.Files;
import java.time.Duration;
import java.time.Instant;
import java.util.HashSet;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code ringserve.v1.Worker}: Generate maps the request onto the engine and streams its events back (tokens,
 * then exactly one finished or error event, then the call completes); Info and Load describe the model and the
 * engine's current load. Nothing here blocks: the engine thread only hands events to the call's observer.
 */
public final class WorkerGrpcService extends WorkerGrpc.WorkerImplBase {
    private static final Logger LOG = LoggerFactory.getLogger(WorkerGrpcService.class);
    private static final Set<String> SAMPLING_FIELDS = Set.of("temperature", "top_k", "top_p", "min_p", "repetition_penalty", "presence_penalty",
            "frequency_penalty");

    private final WorkerEngine worker;
    private final InfoResponse info;

    public WorkerGrpcService(WorkerEngine worker) {
        this.worker = worker;
        this.info = describe(worker);
    }

    // ---- Info and Load -----------------------------------------------------------------------------

    private static InfoResponse describe(WorkerEngine worker) {
        Engine engine = worker.engine();
        ModelConfig c = worker.config();
        String tokenizerSha = "";
        int vocab = c.vocabSize();
        if (Files.exists(worker.model().directory().resolve("tokenizer.json"))) {
            try {
                tokenizerSha = worker.model().tokenizer().sha256();
                vocab = Math.min(vocab, worker.model().tokenizer().vocabSize());
            } catch (ConfigException e) {
                LOG.warn("tokenizer.json cannot be read, so Info carries no tokenizer hash: {}", e.getMessage());
            }
        }
        WorkerProperties p = worker.properties();
        InfoResponse.Builder b = InfoResponse.newBuilder()
                .setModelId(worker.modelId())
                .setArchitecture(c.architectures() == null || c.architectures().isEmpty() ? c.architecture() : c.architectures().getFirst())
                .setShape(ModelShape.newBuilder()
                        .setNumLayers(c.numHiddenLayers())
                        .setHiddenSize(c.hiddenSize())
                        .setNumAttentionHeads(c.numAttentionHeads())
                        .setNumKeyValueHeads(c.numKeyValueHeads())
                        .setHeadDim(c.headDim())
                        .setNumExperts(c.numExperts())
                        .setNumExpertsPerToken(c.numExpertsPerTok())
                        .setVocabSize(c.vocabSize()))
                .setContextLength(worker.model().forward().contextLength())
                .setVocabSize(vocab)
                .setTokenizerSha256(tokenizerSha)
                .setBackend(worker.onGpu() ? Backend.CUDA : Backend.CPU)
                .setDeviceName(worker.deviceName())
                .setKvBlockSize(engine != null ? engine.kvBlockSize() : p.kvBlockSize())
                // a stage after the head stores as many blocks as the head allocates: report what its budget could hold
                .setKvTotalBlocks(engine != null ? engine.kvTotalBlocks() : (int) Math.min(Integer.MAX_VALUE, p.kvCacheBytes().toBytes()
                        / PagedKvCache.bytesPerBlock(c, worker.layers(), p.kvBlockSize())))
                .setMaxBatchTokens(engine != null ? engine.settings().maxBatchTokens() : p.maxBatchTokens())
                .setMaxRunning(engine != null ? engine.settings().maxRunning() : p.maxRunning())
                .setLayers(LayerRange.newBuilder().setStart(worker.layers().start()).setEnd(worker.layers().end()).setTotal(worker.layers().total()))
                .addAllEosTokenIds(new TreeSet<>(worker.model().eosTokenIds()))
                .setProtocolVersion(1)
                .setPipelineRole(worker.role());
        if (p.nextStage() != null) {
            b.setNextStage(p.nextStage());
        }
        return b.build();
    }

    /** What Info answers; constant for the life of the process. */
    public InfoResponse info() {
        return info;
    }

    @Override
    public void info(InfoRequest request, StreamObserver<InfoResponse> responseObserver) {
        responseObserver.onNext(info);
        responseObserver.onCompleted();
    }

    @Override
    public void load(LoadRequest request, StreamObserver<LoadResponse> responseObserver) {
        Engine.Load load = worker.load();
        responseObserver.onNext(LoadResponse.newBuilder()
                .setRunning(load.running())
                .setWaiting(load.waiting())
                .setKvFreeBlocks(load.freeBlocks())
                .setKvTotalBlocks(load.totalBlocks())
                .setKvUsage((float) load.kvUsage())
                .setDraining(load.draining() || worker.isDraining())
                .build());
        responseObserver.onCompleted();
    }

    // ---- Generate ----------------------------------------------------------------------------------

    @Override
    public void generate(GenerateRequest request, StreamObserver<GenerateEvent> responseObserver) {
        if (worker.engine() == null) {
            responseObserver.onError(Status.FAILED_PRECONDITION.withDescription("this worker is a pipeline stage holding layers " + worker.layers()
                    + " and serves only ringserve.v1.PipelineStage; send Generate to the pipeline head (the worker holding layer 0)")
                    .asRuntimeException());
            return;
        }
        GenerateCall call = new GenerateCall((ServerCallStreamObserver<GenerateEvent>) responseObserver, request.getRequestId());
        if (!worker.isReady()) {
            String why = worker.isDraining() ? "the worker is draining and accepts no new requests"
                    : worker.pipelineProblem() != null ? "the pipeline is not whole: " + worker.pipelineProblem()
                    : worker.isWarm() ? "the engine is not running" : "the worker is starting (loading weights or warming up)";
            refuse(call, new EngineEvent.Failed(EngineEvent.ErrorCode.UNAVAILABLE, why, null));
            return;
        }
        EngineRequest engineRequest;
        try {
            engineRequest = toEngineRequest(request, Context.current().getDeadline());
        } catch (InvalidRequestException e) {
            refuse(call, new EngineEvent.Failed(EngineEvent.ErrorCode.INVALID_REQUEST, e.getMessage(), e.param));
            return;
        }
        call.attach(worker.engine().submit(engineRequest, call));
    }

    private void refuse(GenerateCall call, EngineEvent.Failed failure) {
        worker.metrics().refused(failure.code());
        call.onEvent(failure);
    }

    /** A request field that cannot be served; {@code param} is its path in GenerateRequest, e.g. {@code sampling.top_p}. */
    static final class InvalidRequestException extends Exception {
        private static final long serialVersionUID = 1L;
        final String param;

        InvalidRequestException(String message, String param) {
            super(message);
            this.param = param;
        }
    }

    /**
     * Maps the protocol request onto the engine's. Unset proto values mean "off" as the .proto says: top_p and
     * repetition_penalty 0 become 1; an absent seed becomes a random one. Range errors the engine would report
     * later (prompt ids, context, top_k, top_logprobs) are left to its own validation, except the ones only this
     * layer can see (ids beyond the tokenizer, a prompt filling the whole context).
     */
    EngineRequest toEngineRequest(GenerateRequest r, Deadline callDeadline) throws InvalidRequestException {
        int[] prompt = new int[r.getPromptTokenIdsCount()];
        // replayed tokens are the model's own earlier output: it may sample any row of its (padded) embedding,
        // beyond the tokenizer's vocabulary, and a replay must accept what it sampled
        long replayedFrom = prompt.length - Math.min(prompt.length, Integer.toUnsignedLong(r.getReplayedTokens()));
        for (int i = 0; i < prompt.length; i++) {
            long id = Integer.toUnsignedLong(r.getPromptTokenIds(i));
            long vocab = i >= replayedFrom ? info.getShape().getVocabSize() : info.getVocabSize();
            if (id >= vocab) {
                throw new InvalidRequestException("prompt token id " + id + " (position " + i + ") is outside the vocabulary [0, " + vocab
                        + ")", "prompt_token_ids");
            }
            prompt[i] = (int) id;
        }
        if (prompt.length > 0 && prompt.length >= info.getContextLength()) {
            throw new InvalidRequestException("the prompt (" + prompt.length + " tokens) leaves no room for a generated token in the context length "
                    + info.getContextLength(), "prompt_token_ids");
        }
        SamplingParameters s = r.getSampling();
        SamplingParams sampling;
        try {
            sampling = new SamplingParams(s.getTemperature(), clampUnsigned(s.getTopK()), s.getTopP() == 0 ? 1 : s.getTopP(), s.getMinP(),
                    s.getRepetitionPenalty() == 0 ? 1 : s.getRepetitionPenalty(), s.getPresencePenalty(), s.getFrequencyPenalty(),
                    s.hasSeed() ? s.getSeed() : nextSeed());
        } catch (IllegalArgumentException e) {
            String field = e.getMessage() == null ? "" : e.getMessage().split("[ (]", 2)[0];
            throw new InvalidRequestException(e.getMessage(), SAMPLING_FIELDS.contains(field) ? "sampling." + field : "sampling");
        }
        StoppingParameters st = r.getStopping();
        if (st.getMaxNewTokens() == 0) {
            throw new InvalidRequestException("max_new_tokens must be at least 1", "stopping.max_new_tokens");
        }
        Set<Integer> stopIds = new HashSet<>();
        for (int id : st.getStopTokenIdsList()) {
            if (id < 0) {
                throw new InvalidRequestException("stop token id " + Integer.toUnsignedLong(id) + " is outside the vocabulary", "stopping.stop_token_ids");
            }
            stopIds.add(id);
        }
        StoppingParams stopping = new StoppingParams(clampUnsigned(st.getMaxNewTokens()), stopIds, st.getIgnoreEos());
        int topLogprobs = r.getLogprobs() ? clampUnsigned(r.getTopLogprobs()) : -1;
        Instant deadline = r.hasDeadline() ? Instant.ofEpochSecond(r.getDeadline().getSeconds(), r.getDeadline().getNanos()) : null;
        if (callDeadline != null) {
            Instant call = Instant.now().plusNanos(callDeadline.timeRemaining(TimeUnit.NANOSECONDS));
            deadline = deadline == null || call.isBefore(deadline) ? call : deadline;
        }
        return new EngineRequest(r.getRequestId(), prompt, sampling, stopping, topLogprobs, deadline, clampUnsigned(r.getReplayedTokens()));
    }

    private static long nextSeed() {
        return ThreadLocalRandom.current().nextLong();
    }

    /** A uint32 as a Java int, values above Integer.MAX_VALUE clamped (they are out of every range anyway). */
    private static int clampUnsigned(int v) {
        return v < 0 ? Integer.MAX_VALUE : v;
    }

    /** The engine's names for fields at fault, as paths in GenerateRequest. */
    static String protocolParam(String engineParam) {
        if (engineParam == null) {
            return null;
        }
        return switch (engineParam) {
            case "max_new_tokens", "stop_token_ids" -> "stopping." + engineParam;
            case "top_k" -> "sampling.top_k";
            default -> engineParam;
        };
    }

    // ---- engine events -> protocol events ------------------------------------------------------------

    static GenerateEvent tokens(EngineEvent.Tokens t) {
        TokensEvent.Builder b = TokensEvent.newBuilder();
        for (int i = 0; i < t.ids().length; i++) {
            b.addTokenIds(t.ids()[i]);
            if (t.logprobs() != null) {
                TokenLogprob.Builder lp = TokenLogprob.newBuilder().setLogprob(t.logprobs()[i]);
                if (t.top() != null) {
                    for (EngineEvent.TopLogprob top : t.top().get(i)) {
                        lp.addTopLogprobs(TopLogprob.newBuilder().setTokenId(top.tokenId()).setLogprob(top.logprob()));
                    }
                }
                b.addLogprobs(lp);
            }
        }
        return GenerateEvent.newBuilder().setTokens(b).build();
    }

    static GenerateEvent finished(EngineEvent.Finished f) {
        FinishReason reason = switch (f.reason()) {
            case EOS -> FinishReason.EOS;
            case STOP_TOKEN -> FinishReason.STOP_TOKEN;
            case LENGTH -> FinishReason.LENGTH;
            case CANCELLED -> FinishReason.CANCELLED;
        };
        EngineEvent.Timings t = f.timings();
        Duration decode = t.timeToFirstToken().isZero() ? Duration.ZERO : t.total().minus(t.timeToFirstToken());
        return GenerateEvent.newBuilder().setFinished(FinishedEvent.newBuilder()
                .setReason(reason)
                .setUsage(Usage.newBuilder()
                        .setPromptTokens(f.usage().promptTokens())
                        .setCompletionTokens(f.usage().completionTokens())
                        .setCachedTokens(f.usage().cachedTokens()))
                .setTimings(Timings.newBuilder()
                        .setQueueTime(duration(t.queueTime()))
                        .setTimeToFirstToken(duration(t.timeToFirstToken()))
                        .setDecodeTime(duration(decode))
                        .setTotalTime(duration(t.total()))))
                .build();
    }

    static GenerateEvent error(EngineEvent.Failed f) {
        ErrorCode code = switch (f.code()) {
            case INVALID_REQUEST -> ErrorCode.INVALID_REQUEST;
            case RESOURCE_EXHAUSTED -> ErrorCode.RESOURCE_EXHAUSTED;
            case INTERNAL -> ErrorCode.INTERNAL;
            case UNAVAILABLE -> ErrorCode.UNAVAILABLE;
        };
        ErrorEvent.Builder e = ErrorEvent.newBuilder().setCode(code).setMessage(f.message() == null ? "" : f.message());
        String param = protocolParam(f.param());
        if (param != null) {
            e.setParam(param);
        }
        return GenerateEvent.newBuilder().setError(e).build();
    }

    private static com.google.protobuf.Duration duration(Duration d) {
        return com.google.protobuf.Duration.newBuilder().setSeconds(d.getSeconds()).setNanos(d.getNano()).build();
    }

    /**
     * One Generate call: receives the engine's events (on the engine thread, or at once on the caller's thread
     * for a refusal) and writes them to the stream, serialized, nothing after the terminal event or a cancel.
     */
    static final class GenerateCall implements EngineListener {
        private final ServerCallStreamObserver<GenerateEvent> stream;
        private final String requestId;
        private final Object lock = new Object();
        private volatile Engine.RequestHandle handle;
        private volatile boolean cancelled;
        private boolean closed; // guarded by lock

        GenerateCall(ServerCallStreamObserver<GenerateEvent> stream, String requestId) {
            this.stream = stream;
            this.requestId = requestId;
            stream.setOnCancelHandler(this::clientCancelled);
        }

        void attach(Engine.RequestHandle h) {
            handle = h;
            if (cancelled) {
                h.cancel();
            }
        }

        private void clientCancelled() {
            cancelled = true;
            Engine.RequestHandle h = handle;
            if (h != null) {
                h.cancel();
            }
        }

        @Override
        public void onEvent(EngineEvent event) {
            synchronized (lock) {
                if (closed) {
                    return;
                }
                if (cancelled || stream.isCancelled()) {
                    closed = event instanceof EngineEvent.Finished || event instanceof EngineEvent.Failed;
                    return;
                }
                try {
                    switch (event) {
                        case EngineEvent.Tokens t -> stream.onNext(tokens(t));
                        case EngineEvent.Finished f -> {
                            closed = true;
                            stream.onNext(finished(f));
                            stream.onCompleted();
                        }
                        case EngineEvent.Failed f -> {
                            closed = true;
                            stream.onNext(error(f));
                            stream.onCompleted();
                        }
                    }
                } catch (RuntimeException e) {
                    // the call went away between the check and the write: stop the request
                    closed = true;
                    LOG.debug("request {}: stream closed while writing ({})", requestId, e.toString());
                    Engine.RequestHandle h = handle;
                    if (h != null) {
                        h.cancel();
                    }
                }
            }
        }
    }
}
