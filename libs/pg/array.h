#ifndef PTD_LIBS_PG_ARRAY_H_
#define PTD_LIBS_PG_ARRAY_H_

#include <charconv>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

// Many rows in one statement: arrays as single bound parameters, in PostgreSQL's text form, e.g.
//
//   tx.exec_params("SELECT ... FROM unnest($1::uuid[], $2::bigint[]) AS u (id, n)",
//                  pg::TextArray(ids), pg::NumberArray(counts));
//
// One round trip however many rows; the values are still bound, never spliced into the SQL.
namespace ptd::pg {

// Any bytes in bytea's text form, "\x" and two hex digits a byte: for a bytea parameter, an element of a
// TextArray cast to bytea[], or a bytea column in COPY (which escapes the backslash itself).
std::string ByteaText(std::string_view bytes);

// {"a","b\"c"}: every element quoted, '"' and '\' escaped.
std::string TextArray(const std::vector<std::string>& values);

// {1,2.5,-3}: integers, or doubles in the shortest text that reads back as exactly the same value.
template <typename T>
requires std::is_arithmetic_v<T> std::string NumberArray(const std::vector<T>& values) {
  std::string out;
  out.reserve(values.size() * 12 + 2);
  out.push_back('{');
  char buf[32];
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out.push_back(',');
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, values[i]);
    out.append(buf, end);
  }
  out.push_back('}');
  return out;
}

}  // namespace ptd::pg

#endif  // PTD_LIBS_PG_ARRAY_H_
