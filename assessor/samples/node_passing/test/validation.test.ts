import { describe, expect, test } from "vitest";

import { ApiError } from "../src/errors.js";
import { parseHoldSeconds, parseQuantity, parseReservation, parseSku } from "../src/validation.js";

function refusal(action: () => unknown): ApiError {
  try {
    action();
  } catch (error) {
    return error as ApiError;
  }
  throw new Error("expected a refusal");
}

describe("sku", () => {
  test.each(["ABC", "SKU-123", "A1-B2-C3"])("accepts %s", (sku) => expect(parseSku(sku)).toBe(sku));
  test.each(["ab", "lower-case", "-DASH", 42, null])("refuses %s", (sku) => {
    expect(refusal(() => parseSku(sku)).status).toBe(422);
  });
});

describe("quantity", () => {
  test("accepts the bounds", () => {
    expect(parseQuantity(1)).toBe(1);
    expect(parseQuantity(1000)).toBe(1000);
  });
  test.each([0, 1001, 2.5, "3"])("refuses %s", (quantity) => {
    expect(refusal(() => parseQuantity(quantity)).code).toBe("invalid");
  });
});

describe("hold", () => {
  test("defaults to ten minutes", () => expect(parseHoldSeconds(undefined)).toBe(600));
  test("refuses a hold too short", () => expect(refusal(() => parseHoldSeconds(5)).status).toBe(422));
});

describe("reservation body", () => {
  test("reads every field", () => {
    expect(parseReservation({ sku: "ABC", quantity: 2, holdSeconds: 60 })).toEqual({
      sku: "ABC",
      quantity: 2,
      holdSeconds: 60,
    });
  });
  test("refuses unknown fields", () => {
    expect(refusal(() => parseReservation({ sku: "ABC", quantity: 1, price: 3 })).message).toContain("price");
  });
  test("refuses a body that is not an object", () => {
    expect(refusal(() => parseReservation([1])).status).toBe(422);
  });
});
