/**
 * The test kit's Node part: a loopback server speaking both wire protocols, scripted per model.
 *
 * @since 0.1.0
 */

/**
 * A simulated upstream on 127.0.0.1.
 *
 * @since 0.1.0
 */
export * as SimulatedUpstream from "./SimulatedUpstream.js"

/**
 * Scripted upstream behaviour, per model and per attempt.
 *
 * @since 0.1.0
 */
export * as UpstreamScript from "./UpstreamScript.js"
