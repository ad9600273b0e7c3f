// TypeScript declarations of channels-binding.mjs (the channels-binding client).
// Next to a copied channels-binding.mjs, save this file as channels-binding.d.mts.
//
// Untyped:  const client = connect('/');
// Typed:    import type { Api } from './api';   // saved from GET /api/channels-binding.d.ts
//           const client = connect<Api>('/');
//           const user = await client.call('auth.User.retrieve', { id: 5763 }); // user: AuthUser

/** One event's request `data` and reply `data`. */
export interface EventTypes {
  request: unknown;
  reply: unknown;
}

/** What a generated `Api` declares: events by name, and object types by stream. */
export interface ApiShape {
  events: object;
  streams: object;
}

/** The API when nothing is known about it: any event, any data. */
export interface AnyApi {
  events: { [event: string]: { request: any; reply: any } };
  streams: { [stream: string]: any };
}

/** `stream.action` or `stream.action#hash` for a declared event. */
export type EventName<A extends ApiShape> = (keyof A['events'] & string) | `${keyof A['events'] & string}#${string}`;
/** The declared event an event name (perhaps with a `#hash`) stands for. */
export type BaseEvent<K extends string> = K extends `${infer B}#${string}` ? B : K;
/** Request `data` of event `K`. */
export type RequestOf<A extends ApiShape, K extends string> =
  BaseEvent<K> extends keyof A['events'] ? (A['events'][BaseEvent<K>] extends { request: infer R } ? R : unknown) : unknown;
/** Reply `data` of event `K`. */
export type ReplyOf<A extends ApiShape, K extends string> =
  BaseEvent<K> extends keyof A['events'] ? (A['events'][BaseEvent<K>] extends { reply: infer R } ? R : unknown) : unknown;
/** The object type of a stream. */
export type ObjectOf<A extends ApiShape, S extends string> = S extends keyof A['streams'] ? A['streams'][S] : unknown;
/** A subscription target: a stream's feed, or one object (`stream#id`). */
export type Target<A extends ApiShape> = (keyof A['streams'] & string) | `${keyof A['streams'] & string}#${string}`;
/** The stream a target belongs to. */
export type StreamOf<T extends string> = T extends `${infer S}#${string}` ? S : T;

export type State = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** The protocol's error codes, and this client's own (`timeout` ... `network`). */
export type ErrorCode =
  | 'bad_request'
  | 'unknown_event'
  | 'not_found'
  | 'validation'
  | 'unauthenticated'
  | 'forbidden'
  | 'rate_limited'
  | 'payload_too_large'
  | 'unavailable'
  | 'internal'
  | 'timeout'
  | 'closed'
  | 'queue_full'
  | 'connection_lost'
  | 'network';

export interface Position {
  epoch: string;
  seq: number;
}

/** What a `stream.deleted#id` push carries. */
export interface Deleted {
  id: string | number;
}

export interface Push<T = unknown> {
  event: string;
  data: T;
  seq?: number;
  epoch?: string;
}

export interface Options {
  /** A token, or a function called before every (re)connect; sent as `access_token` (WebSocket) or `Authorization: Bearer` (HTTP). */
  token?: string | null | (() => string | null | undefined | Promise<string | null | undefined>);
  /** `auto` (default): WebSocket when the platform has one, else HTTP (`POST /` and SSE). */
  transport?: 'auto' | 'websocket' | 'http';
  /** Default call timeout in ms, queueing included (10000). */
  timeout?: number;
  /** Calls that may wait for a connection (1000); more reject with `queue_full`. */
  maxQueue?: number;
  /** First reconnect delay ceiling in ms (250); doubles per attempt, full jitter. */
  reconnectDelay?: number;
  /** Largest reconnect delay ceiling in ms (15000). */
  reconnectMaxDelay?: number;
  /** Silence in ms after which a probe is sent (20000); 0 turns the heartbeat off. */
  heartbeatInterval?: number;
  /** Wait in ms for any frame after a probe before the connection is declared dead (10000). */
  heartbeatTimeout?: number;
  /** The event a probe sends (`channels_binding.heartbeat`); any reply, even an error, proves the connection alive. */
  heartbeatEvent?: string;
  /** Run the heartbeat's clock in a worker, which hidden tabs do not throttle to once a minute (true). */
  workerTimers?: boolean;
  /** A WebSocket constructor (for Node or tests). */
  WebSocket?: unknown;
  /** A fetch function (for Node or tests). */
  fetch?: typeof fetch;
}

export interface CallOptions {
  timeout?: number;
}

export declare class ChannelsBindingError extends Error {
  readonly code: ErrorCode | string;
  readonly event: string | null;
  readonly fields: Record<string, string[]> | null;
  readonly retryAfterMs: number | null;
  readonly status: number | null;
  readonly details: Record<string, unknown>;
}

export interface ReplyFrame<T = unknown> {
  event: string;
  data: T;
  epoch?: string;
  seq?: number;
  resync?: boolean;
}

export interface ResyncInfo {
  target: string;
  epoch: string | null;
  seq: number | null;
}

export interface Subscription {
  readonly target: string;
  /** Settles with the first subscribe reply (rejects when the server refuses). */
  readonly ready: Promise<unknown>;
  /** The last position seen. */
  readonly position: Position | null;
  unsubscribe(): void;
}

export interface SubscribeOptions {
  /** Called when the server cannot replay what was missed: refetch. */
  onResync?: (position: Position | null) => void;
}

export interface ClientEvents {
  state: (state: State, info: { code?: number; reason?: string }) => void;
  resync: (stream: string, info: ResyncInfo) => void;
  push: (push: Push) => void;
  disconnect: (info: { code: number; reason: string }) => void;
  error: (error: unknown) => void;
}

export declare class Client<A extends ApiShape = AnyApi> {
  readonly state: State;
  readonly transport: 'websocket' | 'http';
  call<K extends EventName<A>>(event: K, data?: RequestOf<A, K>, options?: CallOptions): Promise<ReplyOf<A, K>>;
  request<K extends EventName<A>>(
    frame: { event: K; data?: RequestOf<A, K> },
    options?: CallOptions,
  ): Promise<ReplyFrame<ReplyOf<A, K>>>;
  subscribe<T extends Target<A>>(
    target: T,
    onPush: (push: Push<ObjectOf<A, StreamOf<T>> | Deleted>) => void,
    options?: SubscribeOptions,
  ): Subscription;
  on<N extends keyof ClientEvents>(name: N, fn: ClientEvents[N]): () => void;
  off<N extends keyof ClientEvents>(name: N, fn: ClientEvents[N]): void;
  reconnect(): void;
  close(): void;
}

export declare const STATES: readonly State[];
export declare const DEFAULTS: Readonly<Required<Omit<Options, 'token' | 'WebSocket' | 'fetch'>>>;
export declare function parseEvent(event: string): { stream: string; action: string; hash: string | null };
export declare function backoffDelay(attempt: number, base: number, max: number): number;
export declare function connect<A extends ApiShape = AnyApi>(url: string, options?: Options): Client<A>;
export default connect;
