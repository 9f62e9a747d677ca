package io.ringserve.gateway.api;

/**
 * OpenAI error body.
 *
 * @param error the error
 */
public record ErrorBody(Detail error) {
    /**
     * @param message human-readable cause
     * @param type    invalid_request_error, rate_limit_error, server_error, ...
     * @param param   request parameter at fault, or null
     * @param code    machine-readable code, or null
     */
    public record Detail(String message, String type, String param, String code) {
    }
}
