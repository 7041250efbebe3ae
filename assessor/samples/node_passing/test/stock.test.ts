import { beforeEach, describe, expect, test } from "vitest";

import { Stock } from "../src/stock.js";

let clock = 0;
let stock: Stock;

beforeEach(() => {
  clock = 1_000_000;
  stock = new Stock(() => clock);
  stock.receive("ABC", 5);
});

describe("reserving", () => {
  test("holds units", () => {
    const reservation = stock.reserve("ABC", 2, 60);
    expect(reservation.status).toBe("held");
    expect(stock.available("ABC")).toBe(3);
  });
  test("refuses more than is available", () => {
    stock.reserve("ABC", 4, 60);
    expect(() => stock.reserve("ABC", 2, 60)).toThrow("only 1 of ABC available");
  });
  test("refuses an unknown item", () => {
    expect(() => stock.reserve("NOPE", 1, 60)).toThrow("was not found");
  });
  test("gives every reservation its own id", () => {
    expect(stock.reserve("ABC", 1, 60).id).not.toBe(stock.reserve("ABC", 1, 60).id);
  });
});

describe("ending a hold", () => {
  test("confirming takes the units out of stock", () => {
    const { id } = stock.reserve("ABC", 2, 60);
    expect(stock.confirm(id).status).toBe("confirmed");
    expect(stock.available("ABC")).toBe(3);
    stock.receive("ABC", 0);
    expect(stock.available("ABC")).toBe(3);
  });
  test("cancelling gives the units back", () => {
    const { id } = stock.reserve("ABC", 2, 60);
    stock.cancel(id);
    expect(stock.available("ABC")).toBe(5);
  });
  test("a hold expires at its time", () => {
    const { id } = stock.reserve("ABC", 2, 60);
    clock += 60_000;
    expect(stock.get(id).status).toBe("expired");
    expect(stock.available("ABC")).toBe(5);
  });
  test("an ended hold cannot be confirmed", () => {
    const { id } = stock.reserve("ABC", 2, 60);
    stock.cancel(id);
    expect(() => stock.confirm(id)).toThrow("is cancelled");
  });
  test("an unknown reservation is not found", () => {
    expect(() => stock.get("res_missing")).toThrow("was not found");
    expect(() => stock.cancel("res_missing")).toThrow("was not found");
  });
  test("expiry counts what it ended", () => {
    stock.reserve("ABC", 1, 30);
    stock.reserve("ABC", 1, 90);
    clock += 45_000;
    expect(stock.expireDue()).toBe(1);
  });
});
