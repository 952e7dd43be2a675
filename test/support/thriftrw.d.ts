/** The part of thriftrw (an independent Thrift implementation, Uber's) the Jaeger Thrift test uses. */
declare module 'thriftrw' {
  interface ReadResult {
    err: Error | null;
    offset: number;
    value: unknown;
  }
  interface StructType {
    rw: { readFrom(buffer: Buffer, offset: number): ReadResult };
  }
  export class Thrift {
    constructor(opts: { source: string; allowOptionalArguments?: boolean; strict?: boolean });
    getType(name: string): StructType;
  }
}
