package io.ringserve.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.ByteString;
import com.google.protobuf.Duration;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.Timestamp;
import com.google.protobuf.util.JsonFormat;
import io.ringserve.protocol.v1.Backend;
import io.ringserve.protocol.v1.ErrorCode;
import io.ringserve.protocol.v1.ErrorEvent;
import io.ringserve.protocol.v1.FinishReason;
import io.ringserve.protocol.v1.FinishedEvent;
import io.ringserve.protocol.v1.GenerateEvent;
import io.ringserve.protocol.v1.GenerateRequest;
import io.ringserve.protocol.v1.HiddenDtype;
import io.ringserve.protocol.v1.HiddenStates;
import io.ringserve.protocol.v1.InfoRequest;
import io.ringserve.protocol.v1.InfoResponse;
import io.ringserve.protocol.v1.LayerRange;
import io.ringserve.protocol.v1.LoadRequest;
import io.ringserve.protocol.v1.LoadResponse;
import io.ringserve.protocol.v1.ModelShape;
import io.ringserve.protocol.v1.PipelineRole;
import io.ringserve.protocol.v1.SamplingParameters;
import io.ringserve.protocol.v1.SequenceSampling;
import io.ringserve.protocol.v1.StageEntry;
import io.ringserve.protocol.v1.StageHello;
import io.ringserve.protocol.v1.StageReady;
import io.ringserve.protocol.v1.StageRequest;
import io.ringserve.protocol.v1.StageResponse;
import io.ringserve.protocol.v1.StageResult;
import io.ringserve.protocol.v1.StageSample;
import io.ringserve.protocol.v1.StageStep;
import io.ringserve.protocol.v1.StoppingParameters;
import io.ringserve.protocol.v1.Timings;
import io.ringserve.protocol.v1.TokenLogprob;
import io.ringserve.protocol.v1.TokensEvent;
import io.ringserve.protocol.v1.TopLogprob;
import io.ringserve.protocol.v1.Usage;
import io.ringserve.protocol.v1.WorkerProto;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every message of protocol v1, built with every field set, survives binary and JSON encoding unchanged.
 * A field added to worker.proto fails {@link #samplesSetEveryFieldOfEveryMessage()} until a sample sets it.
 */
class ProtocolRoundTripTest {

    static GenerateRequest generateRequest() {
        return GenerateRequest.newBuilder()
                .setRequestId("req-7f3a")
                .addAllPromptTokenIds(List.of(1, 4242, 157_183))
                .setSampling(SamplingParameters.newBuilder()
                        .setTemperature(0.7f)
                        .setTopK(40)
                        .setTopP(0.95f)
                        .setMinP(0.05f)
                        .setRepetitionPenalty(1.1f)
                        .setPresencePenalty(-0.5f)
                        .setFrequencyPenalty(0.25f)
                        .setSeed(0xFFFF_FFFF_FFFF_FFFFL))
                .setStopping(StoppingParameters.newBuilder()
                        .setMaxNewTokens(512)
                        .addAllStopTokenIds(List.of(156_892, 156_895))
                        .setIgnoreEos(true))
                .setDeadline(Timestamp.newBuilder().setSeconds(1_790_000_000L).setNanos(123_000_000))
                .setLogprobs(true)
                .setTopLogprobs(20)
                .setReplayedTokens(2)
                .build();
    }

    static GenerateEvent tokensEvent() {
        return GenerateEvent.newBuilder()
                .setTokens(TokensEvent.newBuilder()
                        .addTokenIds(17)
                        .addTokenIds(99)
                        .addLogprobs(TokenLogprob.newBuilder()
                                .setLogprob(-0.125f)
                                .addTopLogprobs(TopLogprob.newBuilder().setTokenId(17).setLogprob(-0.125f))
                                .addTopLogprobs(TopLogprob.newBuilder().setTokenId(18).setLogprob(-2.5f)))
                        .addLogprobs(TokenLogprob.newBuilder()
                                .setLogprob(-1.75f)
                                .addTopLogprobs(TopLogprob.newBuilder().setTokenId(3).setLogprob(-0.5f))))
                .build();
    }

    static GenerateEvent finishedEvent(FinishReason reason) {
        return GenerateEvent.newBuilder()
                .setFinished(FinishedEvent.newBuilder()
                        .setReason(reason)
                        .setUsage(Usage.newBuilder().setPromptTokens(3).setCompletionTokens(2).setCachedTokens(1))
                        .setTimings(Timings.newBuilder()
                                .setQueueTime(Duration.newBuilder().setNanos(1_500_000))
                                .setTimeToFirstToken(Duration.newBuilder().setNanos(42_000_000))
                                .setDecodeTime(Duration.newBuilder().setSeconds(1).setNanos(7))
                                .setTotalTime(Duration.newBuilder().setSeconds(2).setNanos(9))))
                .build();
    }

    static GenerateEvent errorEvent(ErrorCode code) {
        return GenerateEvent.newBuilder()
                .setError(ErrorEvent.newBuilder()
                        .setCode(code)
                        .setMessage("top_p (1.5) must be > 0 and <= 1")
                        .setParam("sampling.top_p"))
                .build();
    }

    static InfoResponse infoResponse() {
        return InfoResponse.newBuilder()
                .setModelId("inclusionAI/Ring-mini-2.0")
                .setArchitecture("BailingMoeV2ForCausalLM")
                .setShape(ModelShape.newBuilder()
                        .setNumLayers(20)
                        .setHiddenSize(2048)
                        .setNumAttentionHeads(16)
                        .setNumKeyValueHeads(4)
                        .setHeadDim(128)
                        .setNumExperts(256)
                        .setNumExpertsPerToken(8)
                        .setVocabSize(157_184))
                .setContextLength(32_768)
                .setVocabSize(157_000)
                .setTokenizerSha256("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
                .setBackend(Backend.CUDA)
                .setDeviceName("NVIDIA H100 80GB HBM3")
                .setKvBlockSize(16)
                .setKvTotalBlocks(40_960)
                .setMaxBatchTokens(8192)
                .setMaxRunning(256)
                .setLayers(LayerRange.newBuilder().setStart(10).setEnd(20).setTotal(20))
                .addAllEosTokenIds(List.of(156_892, 156_895))
                .setProtocolVersion(1)
                .setPipelineRole(PipelineRole.PIPELINE_HEAD)
                .setNextStage("ring-serve-worker-1.ring-serve-worker-headless:50051")
                .build();
    }

    static StageRequest stageHello() {
        return StageRequest.newBuilder()
                .setHello(StageHello.newBuilder()
                        .setProtocolVersion(1)
                        .setConfigSha256("2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae")
                        .setTokenizerSha256("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
                        .setLayers(LayerRange.newBuilder().setStart(0).setEnd(10).setTotal(20))
                        .setKvBlockSize(16)
                        .setKvBlocks(4096)
                        .setHiddenDtype(HiddenDtype.HIDDEN_BFLOAT16)
                        .setMaxBatchTokens(512)
                        .setMaxSequences(64))
                .build();
    }

    static StageRequest stageStep() {
        return StageRequest.newBuilder()
                .setStep(StageStep.newBuilder()
                        .setStepId(0xFFFF_FFFF_FFFF_FFFEL)
                        .addAllReleased(List.of(3L, 0x8000_0000_0000_0001L))
                        .addEntries(StageEntry.newBuilder()
                                .setSequenceId(42)
                                .setStart(17)
                                .setTokens(2)
                                .setBlockTableFrom(1)
                                .addAllBlockIds(List.of(7, 4095))
                                .setSample(true)
                                .setSampling(SequenceSampling.newBuilder()
                                        .setTemperature(0.7)
                                        .setTopK(40)
                                        .setTopP(0.95)
                                        .setMinP(0.05)
                                        .setRepetitionPenalty(1.1)
                                        .setPresencePenalty(-0.5)
                                        .setFrequencyPenalty(0.25)
                                        .setSeed(-1L)
                                        .setPromptLength(15)
                                        .setSkippedDraws(2)
                                        .setTopLogprobs(-1))
                                .addAllHistory(List.of(1, 4242, 157_183)))
                        .setHidden(HiddenStates.newBuilder()
                                .setDtype(HiddenDtype.HIDDEN_FLOAT32)
                                .setTokens(2)
                                .setHiddenSize(2)
                                .setData(ByteString.copyFrom(new byte[] {0, 0, (byte) 0x80, 0x3f, 0, 0, 0, (byte) 0xc0, 1, 0, 0, 0, 0, 0, (byte) 0x80,
                                    0x7f}))))
                .build();
    }

    static StageResponse stageReady() {
        return StageResponse.newBuilder()
                .setReady(StageReady.newBuilder().setLayers(LayerRange.newBuilder().setStart(10).setEnd(20).setTotal(20)).setStages(2))
                .build();
    }

    static StageResponse stageResult() {
        return StageResponse.newBuilder()
                .setResult(StageResult.newBuilder()
                        .setStepId(9)
                        .addSamples(StageSample.newBuilder()
                                .setTokenId(157_183)
                                .setLogprob(TokenLogprob.newBuilder()
                                        .setLogprob(-0.125f)
                                        .addTopLogprobs(TopLogprob.newBuilder().setTokenId(157_183).setLogprob(-0.125f))))
                        .addSamples(StageSample.newBuilder().setTokenId(5))
                        .addAllComputeNanos(List.of(1_250_000L, 980_000L)))
                .build();
    }

    static LoadResponse loadResponse() {
        return LoadResponse.newBuilder()
                .setRunning(12)
                .setWaiting(3)
                .setKvFreeBlocks(1000)
                .setKvTotalBlocks(40_960)
                .setKvUsage(0.975f)
                .setDraining(true)
                .build();
    }

    static Stream<Named<Message>> samples() {
        return Stream.of(
                Named.of("GenerateRequest", generateRequest()),
                Named.of("GenerateEvent.tokens", tokensEvent()),
                Named.of("GenerateEvent.finished", finishedEvent(FinishReason.LENGTH)),
                Named.of("GenerateEvent.error", errorEvent(ErrorCode.INVALID_REQUEST)),
                Named.of("InfoRequest", InfoRequest.getDefaultInstance()),
                Named.of("InfoResponse", infoResponse()),
                Named.of("LoadRequest", LoadRequest.getDefaultInstance()),
                Named.of("LoadResponse", loadResponse()),
                Named.of("StageRequest.hello", stageHello()),
                Named.of("StageRequest.step", stageStep()),
                Named.of("StageResponse.ready", stageReady()),
                Named.of("StageResponse.result", stageResult()));
    }

    @ParameterizedTest
    @MethodSource("samples")
    void binaryRoundTrip(Message message) throws InvalidProtocolBufferException {
        byte[] bytes = message.toByteArray();
        Message parsed = message.getParserForType().parseFrom(bytes);
        assertEquals(message, parsed);
        assertTrue(parsed.getUnknownFields().asMap().isEmpty(), "no field was lost as unknown");
        assertEquals(bytes.length, message.getSerializedSize());
    }

    @ParameterizedTest
    @MethodSource("samples")
    void jsonRoundTrip(Message message) throws InvalidProtocolBufferException {
        String json = JsonFormat.printer().print(message);
        Message.Builder builder = message.newBuilderForType();
        JsonFormat.parser().merge(json, builder);
        assertEquals(message, builder.build(), json);
    }

    @Test
    void samplesSetEveryFieldOfEveryMessage() {
        Set<String> set = new TreeSet<>();
        samples().map(Named::getPayload).forEach(m -> collectSetFields(m, set));
        List<String> missing = new ArrayList<>();
        for (Descriptor type : WorkerProto.getDescriptor().getMessageTypes()) {
            for (FieldDescriptor field : type.getFields()) {
                if (!set.contains(field.getFullName())) {
                    missing.add(field.getFullName());
                }
            }
        }
        assertEquals(List.of(), missing, "fields no round-trip sample sets (give them a non-default value)");
    }

    private static void collectSetFields(Message message, Set<String> out) {
        for (Map.Entry<FieldDescriptor, Object> e : message.getAllFields().entrySet()) {
            out.add(e.getKey().getFullName());
            if (e.getKey().getJavaType() == FieldDescriptor.JavaType.MESSAGE) {
                if (e.getValue() instanceof List<?> list) {
                    list.forEach(item -> collectSetFields((Message) item, out));
                } else {
                    collectSetFields((Message) e.getValue(), out);
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = FinishReason.class, mode = EnumSource.Mode.EXCLUDE, names = "UNRECOGNIZED")
    void everyFinishReasonRoundTrips(FinishReason reason) throws InvalidProtocolBufferException {
        GenerateEvent event = finishedEvent(reason);
        GenerateEvent parsed = GenerateEvent.parseFrom(event.toByteArray());
        assertEquals(reason, parsed.getFinished().getReason());
    }

    @ParameterizedTest
    @EnumSource(value = ErrorCode.class, mode = EnumSource.Mode.EXCLUDE, names = "UNRECOGNIZED")
    void everyErrorCodeRoundTrips(ErrorCode code) throws InvalidProtocolBufferException {
        GenerateEvent event = errorEvent(code);
        GenerateEvent parsed = GenerateEvent.parseFrom(event.toByteArray());
        assertEquals(code, parsed.getError().getCode());
    }

    @ParameterizedTest
    @EnumSource(value = Backend.class, mode = EnumSource.Mode.EXCLUDE, names = "UNRECOGNIZED")
    void everyBackendRoundTrips(Backend backend) throws InvalidProtocolBufferException {
        InfoResponse info = infoResponse().toBuilder().setBackend(backend).build();
        assertEquals(backend, InfoResponse.parseFrom(info.toByteArray()).getBackend());
    }

    @ParameterizedTest
    @EnumSource(value = PipelineRole.class, mode = EnumSource.Mode.EXCLUDE, names = "UNRECOGNIZED")
    void everyPipelineRoleRoundTrips(PipelineRole role) throws InvalidProtocolBufferException {
        InfoResponse info = infoResponse().toBuilder().setPipelineRole(role).build();
        assertEquals(role, InfoResponse.parseFrom(info.toByteArray()).getPipelineRole());
    }

    @ParameterizedTest
    @EnumSource(value = HiddenDtype.class, mode = EnumSource.Mode.EXCLUDE, names = "UNRECOGNIZED")
    void everyHiddenDtypeRoundTrips(HiddenDtype dtype) throws InvalidProtocolBufferException {
        StageRequest hello = stageHello().toBuilder().setHello(stageHello().getHello().toBuilder().setHiddenDtype(dtype)).build();
        assertEquals(dtype, StageRequest.parseFrom(hello.toByteArray()).getHello().getHiddenDtype());
    }

    @Test
    void stageMessagesCarryExactlyOneCase() {
        assertEquals(StageRequest.KindCase.HELLO, stageHello().getKindCase());
        assertEquals(StageRequest.KindCase.STEP, stageStep().getKindCase());
        assertEquals(StageResponse.KindCase.READY, stageReady().getKindCase());
        assertEquals(StageResponse.KindCase.RESULT, stageResult().getKindCase());
        assertEquals(StageRequest.KindCase.KIND_NOT_SET, StageRequest.getDefaultInstance().getKindCase());
    }

    @Test
    void aSampleWithoutLogprobsKeepsThemAbsent() throws InvalidProtocolBufferException {
        StageSample plain = StageSample.parseFrom(StageSample.newBuilder().setTokenId(5).build().toByteArray());
        assertFalse(plain.hasLogprob());
        StageSample zero = StageSample.parseFrom(StageSample.newBuilder().setTokenId(5).setLogprob(TokenLogprob.getDefaultInstance()).build()
                .toByteArray());
        assertTrue(zero.hasLogprob(), "a logprob of exactly 0 (probability 1) is still present");
    }

    @Test
    void seedZeroIsDistinctFromNoSeed() throws InvalidProtocolBufferException {
        SamplingParameters zero = SamplingParameters.newBuilder().setSeed(0).build();
        SamplingParameters none = SamplingParameters.getDefaultInstance();
        assertTrue(SamplingParameters.parseFrom(zero.toByteArray()).hasSeed());
        assertFalse(SamplingParameters.parseFrom(none.toByteArray()).hasSeed());
        assertEquals(0L, SamplingParameters.parseFrom(zero.toByteArray()).getSeed());
    }

    @Test
    void absentDeadlineAndParamStayAbsent() throws InvalidProtocolBufferException {
        GenerateRequest request = generateRequest().toBuilder().clearDeadline().build();
        assertFalse(GenerateRequest.parseFrom(request.toByteArray()).hasDeadline());
        ErrorEvent error = ErrorEvent.newBuilder().setCode(ErrorCode.INTERNAL).setMessage("boom").build();
        ErrorEvent parsed = ErrorEvent.parseFrom(error.toByteArray());
        assertFalse(parsed.hasParam());
        assertEquals("", parsed.getParam());
    }

    @Test
    void unsetSamplingFieldsReadAsZero() {
        // the worker maps top_p 0 and repetition_penalty 0 to the neutral value 1, as worker.proto documents
        SamplingParameters unset = SamplingParameters.getDefaultInstance();
        assertEquals(0f, unset.getTopP());
        assertEquals(0f, unset.getRepetitionPenalty());
        assertEquals(0f, unset.getTemperature());
        assertEquals(0, unset.getTopK());
    }

    @Test
    void generateEventCarriesExactlyOneCase() {
        assertEquals(GenerateEvent.EventCase.TOKENS, tokensEvent().getEventCase());
        assertEquals(GenerateEvent.EventCase.FINISHED, finishedEvent(FinishReason.EOS).getEventCase());
        assertEquals(GenerateEvent.EventCase.ERROR, errorEvent(ErrorCode.UNAVAILABLE).getEventCase());
        assertEquals(GenerateEvent.EventCase.EVENT_NOT_SET, GenerateEvent.getDefaultInstance().getEventCase());
        GenerateEvent overwritten = tokensEvent().toBuilder().setFinished(FinishedEvent.getDefaultInstance()).build();
        assertFalse(overwritten.hasTokens());
    }
}
