/** Errors the API turns into responses: each carries its HTTP status and a stable machine-readable code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const notFound = (what: string) => new ApiError(404, "not_found", `${what} was not found`);
export const conflict = (message: string) => new ApiError(409, "conflict", message);
export const invalid = (message: string) => new ApiError(422, "invalid", message);
