# c_array(FILE NAME TYPE CODE_VAR LEN_VAR): appends to CODE_VAR the C definition
# `static const TYPE NAME[] = {bytes..., 0};` holding FILE's bytes followed by a
# NUL (text files can then be used as C strings), and sets LEN_VAR to the
# file's length without that NUL. Used by the scripts that embed data files
# into the binaries (data/benchmarks/embed.cmake, tools/web/embed.cmake).
function(c_array file name type code_var len_var)
  file(READ "${file}" hex HEX)
  string(LENGTH "${hex}" n)
  math(EXPR n "${n} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "((0x..,){32})" "\\1\n" bytes "${bytes}")
  set(${code_var} "${${code_var}}static const ${type} ${name}[] = {\n${bytes}0};\n" PARENT_SCOPE)
  set(${len_var} ${n} PARENT_SCOPE)
endfunction()
